//! Output formats shared by the commands.

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};

/// How a command prints what it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A table for people.
    Table,
    /// JSON for programs.
    Json,
}

/// Prints a borderless table with a header row.
pub(crate) fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

/// Prints a list of names: one per line by default (for scripts), a one-column table,
/// or a JSON array.
pub(crate) fn print_names(names: &[String], output: Option<Output>, header: &str) {
    match output {
        None => {
            for name in names {
                println!("{name}");
            }
        }
        Some(Output::Json) => println!("{}", serde_json::json!(names)),
        Some(Output::Table) => {
            let rows = names.iter().map(|n| vec![n.clone()]).collect();
            print_table(&[header], rows);
        }
    }
}
