//! The command-line vocabulary the xtask and every binary share, so that one thing has one
//! name everywhere: [`Device`] (the one device enum), [`Run`] (`--seed`, `--device`,
//! `--exact`, flattened into every command that trains), [`values`] (checks of single
//! values, refused by the parser), and [`homework_spellings`], which lets the homework's own
//! command lines run unchanged.
//!
//! The names, in every binary: `--epochs`, `--learning-rate`, `--batch-size`, `--data`,
//! `--out`, `--quick`, `--device`, `--seed`, `--exact`. The homework scripts' spellings
//! (`--n_epochs`, `--lr`, `--use_attn`, `--data_dir`, `-learning_rate`, `-data_path`, …)
//! are aliases of them.

pub mod stages;
pub mod values;

/// `--device`: where the tensors live.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// CUDA when libtorch sees a GPU, else the CPU.
    Auto,
    /// The CPU (the default: the homework's numbers are CPU numbers).
    #[default]
    Cpu,
    /// The first CUDA GPU; an error when there is none.
    Cuda,
}

impl Device {
    /// The flag's value, to pass the choice on to a child process.
    pub fn as_arg(self) -> &'static str {
        match self {
            Device::Auto => "auto",
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        }
    }
}

/// The options of every command that trains or runs a stage.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Run {
    /// Seed of every random draw (initialisation, shuffling, dropout, sampling).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to run: cpu, cuda, or auto (CUDA when libtorch sees a GPU).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Train and test as the homework's own code does, op for op and draw for draw: with the
    /// same seed and one thread, its printed numbers digit for digit; several times slower.
    #[arg(long)]
    pub exact: bool,
}

/// The command line that gives back `options` when parsed: a parent's typed options for its
/// child process, so that a renamed field fails to compile instead of at run time. Each field
/// becomes `--field-name value` (clap's default long name for it); `true` a bare switch,
/// `false` and `None` nothing, a list one flag per item, a `#[serde(flatten)]` group its
/// fields. `options` must serialise to a map of such fields, and every field must be clap's
/// `#[arg(long)]` of that name.
pub fn to_args<T: serde::Serialize>(options: &T) -> Vec<String> {
    use serde_json::Value;
    let Ok(Value::Object(fields)) = serde_json::to_value(options) else {
        panic!("options that serialise to a map of fields");
    };
    let mut args = Vec::new();
    for (name, value) in fields {
        let flag = format!("--{}", name.replace('_', "-"));
        let items = match value {
            Value::Array(items) => items,
            one => vec![one],
        };
        for item in items {
            match item {
                Value::Null | Value::Bool(false) => {}
                Value::Bool(true) => args.push(flag.clone()),
                Value::String(s) => args.extend([flag.clone(), s]),
                Value::Number(n) => args.extend([flag.clone(), n.to_string()]),
                other => panic!("{flag}: a value of no command-line form: {other}"),
            }
        }
    }
    args
}

/// The Q2 script's options, which `argparse` spells with one dash (`-learning_rate 0.1`).
pub const Q2_SCRIPT_OPTIONS: &[&str] = &[
    "epochs",
    "batch_size",
    "learning_rate",
    "l2_decay",
    "dropout",
    "optimizer",
    "no_maxpool",
    "no_batch_norm",
    "data_path",
    "device",
];

/// The command line with the homework script's one-dash options (`-learning_rate`, any of
/// `options`) given the two dashes clap reads; everything else as it was. clap has no
/// one-dash long options, and a one-dash word is never one of our short flags.
pub fn homework_spellings<I, S>(args: I, options: &[&str]) -> Vec<std::ffi::OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString>,
{
    args.into_iter()
        .map(|a| {
            let a: std::ffi::OsString = a.into();
            match a.to_str().and_then(|s| s.strip_prefix('-')) {
                Some(name) if options.contains(&name) => format!("--{name}").into(),
                _ => a,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_dash_options_of_the_script_get_two() {
        let args = homework_spellings(
            [
                "cnn",
                "-learning_rate",
                "0.1",
                "-no_batch_norm",
                "--epochs",
                "3",
                "-x",
                "-1",
            ],
            Q2_SCRIPT_OPTIONS,
        );
        assert_eq!(
            args,
            [
                "cnn",
                "--learning_rate",
                "0.1",
                "--no_batch_norm",
                "--epochs",
                "3",
                "-x",
                "-1"
            ]
        );
    }

    /// What a child parses from `to_args` is what its parent built, for every kind of field.
    #[test]
    fn typed_options_survive_the_command_line() {
        #[derive(clap::Parser, serde::Serialize, Debug, PartialEq)]
        struct Child {
            #[arg(long)]
            learning_rate: f64,
            #[arg(long)]
            epochs: usize,
            #[arg(long)]
            data: std::path::PathBuf,
            #[arg(long)]
            use_attn: bool,
            #[arg(long)]
            checkpoint: Option<std::path::PathBuf>,
            #[arg(long)]
            outcome: Option<std::path::PathBuf>,
            #[arg(long)]
            widths: Vec<usize>,
            #[command(flatten)]
            #[serde(flatten)]
            run: Run,
        }
        let child = Child {
            learning_rate: 1e-5,
            epochs: 20,
            data: "data dir/p2g".into(),
            use_attn: true,
            checkpoint: Some("m.safetensors".into()),
            outcome: None,
            widths: vec![1, 5],
            run: Run {
                seed: u64::MAX,
                device: Device::Cuda,
                exact: false,
            },
        };
        let args = to_args(&child);
        assert!(args.contains(&"--learning-rate".to_string()), "{args:?}");
        let parsed =
            <Child as clap::Parser>::try_parse_from(std::iter::once("child".into()).chain(args))
                .unwrap();
        assert_eq!(parsed, child);
    }

    #[test]
    fn run_options_default_to_the_cpu() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: Run,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(["x"]).unwrap();
        assert_eq!(
            cli.run,
            Run {
                seed: 42,
                device: Device::Cpu,
                exact: false
            }
        );
        let cli =
            <Cli as clap::Parser>::try_parse_from(["x", "--device", "cuda", "--exact"]).unwrap();
        assert_eq!(cli.run.device.as_arg(), "cuda");
        assert!(cli.run.exact);
    }
}
