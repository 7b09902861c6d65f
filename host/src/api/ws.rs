//! `GET /v1/ws`: progress of several generations over one WebSocket.
//!
//! The client sends JSON text messages:
//! - `{"action":"subscribe","generation_id":"gen_…"}`: the server answers with the current state
//!   and then every change, as `{"type":"progress"|"succeeded"|"failed"|"canceled","id",
//!   "status","progress","stage","generation"?}` (the same objects as the SSE stream of
//!   `GET /v1/generations/{id}/events`, with its event name as `type`); the subscription ends
//!   by itself with the final event.
//! - `{"action":"unsubscribe","generation_id":"gen_…"}`.
//!
//! Errors come back as `{"type":"error","code","message","generation_id"?}` (`not_found`,
//! `validation_error` for a malformed message or more than [`MAX_SUBSCRIPTIONS`] at once) and
//! leave the connection open. Messages over [`MAX_MESSAGE_BYTES`] close it. The server pings
//! every 15 s so that proxies keep the connection.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use poem::web::Data;
use poem::web::websocket::{Message, WebSocket, WebSocketStream};
use poem::{IntoResponse, handler};
use poem_openapi::types::ToJSON;
use serde::Deserialize;

use super::generations::{GenerationStreamEvent, stream_generation};
use crate::service::App;
use crate::service::generations::is_final;

/// Generations one connection may follow at once.
pub const MAX_SUBSCRIPTIONS: usize = 100;
/// Largest client message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    action: String,
    generation_id: String,
}

/// Upgrade to a WebSocket and serve subscriptions on it.
#[handler]
pub fn ws(
    socket: WebSocket,
    app: Data<&App>,
    principal: Data<&crate::auth::Principal>,
    credential: Option<Data<&super::Credential>>,
) -> impl IntoResponse {
    let app = app.0.clone();
    // Refuse big messages while reading them, not after.
    let config = poem::web::websocket::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let principal = principal.0.clone();
    let credential = credential.map(|c| c.0.0.clone());
    socket.config(config).on_upgrade(move |stream| serve(app, principal, credential, stream))
}

fn error(code: &str, message: &str, generation_id: Option<&str>) -> Message {
    let mut body = serde_json::json!({ "type": "error", "code": code, "message": message });
    if let Some(id) = generation_id {
        body["generation_id"] = id.into();
    }
    Message::Text(body.to_string())
}

fn event_message(e: &GenerationStreamEvent) -> Message {
    let mut body: serde_json::Value = e.to_json().unwrap_or_default();
    let kind = if is_final(&e.status) { e.status.as_str() } else { "progress" };
    body["type"] = kind.into();
    Message::Text(body.to_string())
}

async fn serve(app: App, principal: crate::auth::Principal, credential: Option<String>, stream: WebSocketStream) {
    let (mut sink, mut incoming) = stream.split();
    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel::<GenerationStreamEvent>(256);
    let mut subscriptions: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut ping = tokio::time::interval(Duration::from_secs(15));
    ping.tick().await;
    loop {
        let reply = tokio::select! {
            msg = incoming.next() => match msg {
                Some(Ok(Message::Text(text))) if text.len() <= MAX_MESSAGE_BYTES => {
                    // The credential is checked again on every message: a revoked key, a
                    // disabled account or a changed tier holds on open sockets too.
                    let current = match &credential {
                        None => Ok(principal.clone()),
                        Some(token) => app.auth.authenticate(app.db.as_ref(), Some(token), principal.ip).await,
                    };
                    match current {
                        Ok(current) => handle(&app, &current, &text, &mut subscriptions, &events_tx).await,
                        Err(e) => {
                            let _ = sink.send(error(e.code().as_str(), &e.to_string(), None)).await;
                            break;
                        }
                    }
                }
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => None,
            },
            Some(event) = events_rx.recv() => {
                if is_final(&event.status) {
                    subscriptions.remove(&event.id);
                }
                Some(event_message(&event))
            }
            _ = ping.tick() => Some(Message::Ping(Vec::new())),
        };
        // A client that stops reading is dropped rather than buffered for.
        if let Some(reply) = reply
            && !matches!(tokio::time::timeout(Duration::from_secs(30), sink.send(reply)).await, Ok(Ok(())))
        {
            break;
        }
    }
    for (_, task) in subscriptions {
        task.abort();
    }
}

/// One client message; the reply to send, if any.
async fn handle(
    app: &App,
    principal: &crate::auth::Principal,
    text: &str,
    subscriptions: &mut HashMap<String, tokio::task::JoinHandle<()>>,
    events: &tokio::sync::mpsc::Sender<GenerationStreamEvent>,
) -> Option<Message> {
    let msg: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            return Some(error(
                "validation_error",
                &format!("expected {{\"action\":\"subscribe\"|\"unsubscribe\",\"generation_id\":\"gen_…\"}}: {e}"),
                None,
            ));
        }
    };
    let id = msg.generation_id.as_str();
    match msg.action.as_str() {
        "subscribe" => {
            if subscriptions.get(id).is_some_and(|t| !t.is_finished()) {
                return None;
            }
            subscriptions.retain(|_, t| !t.is_finished());
            if subscriptions.len() >= MAX_SUBSCRIPTIONS {
                return Some(error(
                    "validation_error",
                    &format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"),
                    Some(id),
                ));
            }
            match app.get_generation(principal, id).await {
                Ok(view) => {
                    let task = tokio::spawn(stream_generation(app.clone(), view, events.clone()));
                    subscriptions.insert(id.to_string(), task);
                    None
                }
                Err(e) => Some(error(e.code().as_str(), &e.to_string(), Some(id))),
            }
        }
        "unsubscribe" => {
            if let Some(task) = subscriptions.remove(id) {
                task.abort();
            }
            None
        }
        other => Some(error(
            "validation_error",
            &format!("action must be \"subscribe\" or \"unsubscribe\", got {other:?}"),
            Some(id),
        )),
    }
}
