//! Typed scalar values of the config file.
//!
//! The file layer deserialises a duration, a size, an address or a closed
//! set of words straight into its type with the place it was written
//! ([`Typed`]). A bad value does not stop parsing: it is kept as an error
//! beside its position, so that the builder reports every bad value of a
//! file at once, each under its key path.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use super::units::{parse_duration, parse_size};
use super::{Problem, Problems};

/// A value that can be read from its text in the config file. The error
/// says what is wrong and what would be right, and never repeats a secret.
pub(crate) trait FromText: Sized {
    fn from_text(text: &str) -> Result<Self, String>;
}

/// A value as written in the file: its type (or why the text is not one)
/// and its line and column.
#[derive(Debug)]
pub(crate) struct Typed<T> {
    pub value: Result<T, String>,
    pub at: (u64, u64),
}

/// Where a spanned value was written: 1-based line and column.
pub(crate) fn pos<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

impl<'de, T: FromText> Deserialize<'de> for Typed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Spanned::<String>::deserialize(d)?;
        Ok(Typed {
            value: T::from_text(&text.value),
            at: pos(&text),
        })
    }
}

impl<T: Clone> Typed<T> {
    /// The value, or `None` with a problem recorded under `key`.
    pub fn check(&self, key: &str, p: &mut Problems) -> Option<T> {
        match &self.value {
            Ok(v) => Some(v.clone()),
            Err(e) => {
                p.push(Problem::at(key, self.at, e.clone()));
                None
            }
        }
    }
}

/// An optional typed value: its value, `default` when absent, and
/// `default` with a problem recorded under `key` when it is wrong.
pub(crate) fn or_default<T: Clone>(
    v: Option<&Typed<T>>,
    key: &str,
    default: T,
    p: &mut Problems,
) -> T {
    v.and_then(|v| v.check(key, p)).unwrap_or(default)
}

impl FromText for Duration {
    fn from_text(text: &str) -> Result<Self, String> {
        parse_duration(text)
    }
}

/// A size in bytes, as written (`64KiB`, `1MiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub u64);

impl FromText for Size {
    fn from_text(text: &str) -> Result<Self, String> {
        parse_size(text).map(Size)
    }
}

impl FromText for SocketAddr {
    fn from_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an address like `0.0.0.0:8080`"))
    }
}

/// Declares how a closed set of words in the file maps onto an enum, once:
/// the parse, the error that lists the choices, and the word for display.
///
/// `text_enum! { pub enum E { A = "a", B = "b" } }` declares the enum too;
/// `text_enum! { impl path::E { A = "a" } }` maps an enum defined elsewhere.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// The word the config file uses for this value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        text_enum!(impl $name { $($variant = $text),+ });

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                $crate::config::value::FromText::from_text(text)
            }
        }
    };
    (impl $name:path { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $crate::config::value::FromText for $name {
            fn from_text(text: &str) -> Result<Self, String> {
                use $name as This;
                match text.trim() {
                    $($text => Ok(This::$variant),)+
                    other => Err(format!(
                        "`{other}`: use {}",
                        $crate::config::value::choices(&[$($text),+])
                    )),
                }
            }
        }
    };
}
pub(crate) use text_enum;

/// `a`, `a or b`, `a, b or c`.
pub(crate) fn choices(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|w| format!("`{w}`")).collect();
            format!("{} or `{last}`", init.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    text_enum! {
        /// A test enum.
        pub enum Colour { Red = "red", Green = "green", Blue = "blue" }
    }

    #[derive(Debug, Deserialize)]
    struct Doc {
        colour: Typed<Colour>,
        wait: Option<Typed<Duration>>,
        size: Option<Typed<Size>>,
    }

    #[test]
    fn typed_values_keep_their_errors_and_positions() {
        let d: Doc = serde_saphyr::from_str("colour: teal\nwait: 5 minutes\nsize: 2KiB\n").unwrap();
        assert_eq!(d.colour.at.0, 1);
        assert_eq!(
            d.colour.value,
            Err("`teal`: use `red`, `green` or `blue`".into())
        );
        let mut p = Vec::new();
        assert_eq!(
            or_default(d.wait.as_ref(), "wait", Duration::ZERO, &mut p),
            Duration::ZERO
        );
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].key.as_str(), p[0].line.map(|l| l.0)),
            ("wait", Some(2))
        );
        assert_eq!(d.size.unwrap().value, Ok(Size(2048)));
    }

    #[test]
    fn enum_words_round_trip() {
        for c in [Colour::Red, Colour::Green, Colour::Blue] {
            assert_eq!(Colour::from_text(c.as_str()), Ok(c));
        }
        assert_eq!(choices(&["a", "b"]), "`a` or `b`");
    }
}
