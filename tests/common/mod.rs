//! Real parts for end-to-end tests, by concern: receivers on loopback
//! ([`receiver`]), gateways from typed test configs ([`gateway`]), a raw
//! HTTP/1.1 client ([`client`]), signed deliveries ([`signing`]) and a
//! private `redis-server` ([`redis_server`]).

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod client;
pub mod gateway;
pub mod receiver;
pub mod redis_server;
pub mod signing;

pub use client::*;
#[allow(unused_imports)] // not every test binary starts a gateway
pub use gateway::*;
pub use receiver::*;
pub use signing::*;

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

use hookgate::dedupe::MemoryStore;
use hookgate::gateway::Gateway;
use hookgate::server::RunningGateway;
use hookgate::verify::{Fynapse, Scheme};

pub const SECRET: &str = "test-secret-1";

/// A free loopback port (bind :0, read, release).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now() -> i64 {
    hookgate::verify::unix_now()
}

pub fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}
