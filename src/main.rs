//! The `spindle` command line.

fn main() -> anyhow::Result<()> {
    Ok(())
}
