//! Logging: `tracing` with a pretty (default) or JSON formatter. Filter with `RUST_LOG`
//! (default `info`, with wasmtime's compiler chatter at `warn`).
//!
//! JSON lines are flat: the event's fields and those of every span it happened in (the
//! request's `request_id`, `method` and `path`; a job's `request_id`, `generation_id` and
//! `attempt`) are members of one object, so a log shipper can index and filter on them
//! without digging into nested span lists. Colour is used only on a terminal and never when
//! `NO_COLOR` is set.

use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info,wasmtime=warn,cranelift=warn,sqlx=warn";

/// Install the global subscriber writing to stderr (once; later calls are ignored).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let ansi = ansi_wanted(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"));
    let _ = try_init_with(format, filter, std::io::stderr, ansi);
    if format == LogFormat::Json {
        // A panic's message would otherwise be a plain-text line in the JSON stream.
        std::panic::set_hook(Box::new(|info| {
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %message, %location, "a thread panicked");
        }));
    }
}

/// Install the global subscriber: `format` lines through `filter` to `writer`, coloured only
/// when `ansi` (and never in JSON). Fails when a global subscriber is already installed.
pub fn try_init_with<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Pretty => builder.compact().with_ansi(ansi).try_init(),
        LogFormat::Json => builder.with_ansi(false).fmt_fields(JsonFields::new()).event_format(FlatJson).try_init(),
    }
}

/// Colour only on a terminal, and not when `NO_COLOR` is set to anything but the empty string
/// (<https://no-color.org>).
pub fn ansi_wanted(is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// One JSON object per line: `timestamp` (RFC 3339, UTC), `level`, `target`, the fields of
/// every span the event is in (outermost first, inner ones win), then the event's own fields
/// (`message` included).
struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = serde_json::Map::new();
        line.insert("timestamp".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                // `JsonFields` keeps each span's fields as a JSON object.
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(fields.as_str())
                {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut Fields(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Collects an event's fields into the JSON line. Events bridged from the `log` crate carry
/// their origin as `log.*` fields: `log.target` becomes `target`, the rest is dropped.
struct Fields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        match field.name() {
            "log.target" => {
                self.0.insert("target".into(), value);
            }
            name if name.starts_with("log.") => {}
            name => {
                self.0.insert(name.to_string(), value);
            }
        }
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, serde_json::Number::from_f64(value).map_or_else(|| value.to_string().into(), Into::into));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::Instrument;

    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(ansi_wanted(true, None));
        assert!(!ansi_wanted(false, None), "a pipe or a file gets no escape codes");
        assert!(!ansi_wanted(true, Some("1".into())));
        assert!(!ansi_wanted(false, Some("1".into())));
        assert!(ansi_wanted(true, Some("".into())), "an empty NO_COLOR counts as unset");
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn json_lines_are_flat_with_every_span_field() {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let outer = tracing::info_span!("request", request_id = "req_1", path = "/v1/x");
        // A span's parent is the span current where it is made.
        let inner = outer.in_scope(|| tracing::info_span!("job", generation_id = tracing::field::Empty, attempt = 1));
        async {
            tracing::Span::current().record("generation_id", "gen_1");
            tracing::warn!(code = "x", elapsed_ms = 1.5, ok = true, error = ?"bad \"quote\"", "done {}", 7);
        }
        .instrument(inner)
        .instrument(outer)
        .await;
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["request_id"], "req_1");
        assert_eq!(line["path"], "/v1/x");
        assert_eq!(line["generation_id"], "gen_1");
        assert_eq!(line["attempt"], 1);
        assert_eq!(line["message"], "done 7");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["code"], "x");
        assert_eq!(line["elapsed_ms"], 1.5);
        assert_eq!(line["ok"], true);
        assert_eq!(line["error"], "\"bad \\\"quote\\\"\"");
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{line}");
        assert!(!text.contains('\u{1b}'), "no escape codes in JSON");
    }
}
