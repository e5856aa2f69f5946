//! Prints the harness's progress events (`netconform_harness::progress`) on
//! stderr as `netconform [<scenario>] <message>`. `NETCONFORM_LOG` takes
//! tracing's filter syntax to show more (e.g. `NETCONFORM_LOG=kube=debug`);
//! by default: netconform's progress and other crates' warnings.

use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::{format, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("NETCONFORM_LOG")
        // kube's client builder logs a failed connection that netconform
        // reports itself, in one line naming the kubeconfig and context.
        .unwrap_or_else(|_| {
            EnvFilter::new("warn,netconform=info,kube_client::client::builder=off")
        });
    // A second call (the fault tests run the suite several times) keeps the first.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .event_format(Progress)
        .try_init();
}

struct Progress;

impl<S, N> FormatEvent<S, N> for Progress
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        match &fields.scenario {
            Some(scenario) => write!(writer, "netconform [{scenario}] {}", fields.message)?,
            None => {
                let meta = event.metadata();
                write!(
                    writer,
                    "{} {}: {}",
                    meta.level(),
                    meta.target(),
                    fields.message
                )?
            }
        }
        writeln!(writer, "{}", fields.other)
    }
}

#[derive(Default)]
struct Fields {
    scenario: Option<String>,
    message: String,
    other: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "scenario" => self.scenario = Some(value.to_string()),
            "message" => self.message = value.to_string(),
            name => {
                let _ = write!(self.other, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "scenario" => self.scenario = Some(format!("{value:?}")),
            "message" => self.message = format!("{value:?}"),
            name => {
                let _ = write!(self.other, " {name}={value:?}");
            }
        }
    }
}
