//! `cargo test` entry point: every check of every scenario in scenarios/ as a
//! trial named `<scenario>::<check>`. See suite/src/lib.rs.

fn main() -> std::process::ExitCode {
    netconform_suite::main()
}
