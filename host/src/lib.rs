#![warn(missing_docs)]
//! # Easel
//!
//! A self-hosted AI image generation server. One binary serves a documented REST API
//! (`/docs`, `/openapi.json`); model providers are sandboxed WebAssembly component plugins;
//! generations are durable jobs in SQLite; image files live in a blob store.
//!
//! Layout: [`api`] (HTTP, one module per resource, one route table), [`service`] (business
//! rules and the job pipeline), [`db`] (persistence traits and backends), [`blobs`] (file
//! storage), [`plugins`] (wasmtime runtime and registry), [`imaging`] (pixel work),
//! [`config`], [`error`], [`telemetry`], [`server`] (start-up wiring).

pub mod api;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod db;
pub mod error;
pub mod imaging;
pub mod metrics;
pub mod net;
pub mod plugins;
pub mod scaffold;
pub mod server;
pub mod service;
pub mod telemetry;
