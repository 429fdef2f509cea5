//! Reading PyTorch's own checkpoint files: `torch.save(model.state_dict(), "model.pt")`.
//!
//! Such a file is a zip archive holding `<name>/data.pkl`, a pickle of an `OrderedDict` from
//! parameter names to tensors, and `<name>/data/<key>`, the raw little-endian bytes of each
//! tensor's storage, which the pickle names by a persistent id.
//!
//! No maintained Rust crate reads this without a large dependency: serde-pickle refuses the
//! persistent-id opcode that torch uses for storages, and candle-core's reader comes with a
//! whole tensor library and a tokenizer. So this is a small unpickler for exactly what
//! `torch.save` writes for a state_dict. It runs no code: the only callables it accepts are
//! `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and `_rebuild_parameter`
//! (what `torch.load(..., weights_only=True)` allows for a state_dict); anything else is an
//! error that names it.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use tch::{Kind, Tensor};

/// Whether `path` starts like a zip archive (PyTorch's format since 1.6) rather than
/// safetensors (which starts with a little-endian header length).
pub fn is_pytorch_file(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == *b"PK\x03\x04")
}

/// The tensors of a state_dict saved by `torch.save`, in the file's order, on the CPU.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>> {
    read(path).with_context(|| format!("reading the PyTorch file {}", path.display()))
}

fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let file = std::fs::File::open(path)?;
    let mut zip = zip::ZipArchive::new(file).context("not a zip archive")?;
    let pickle_name = zip
        .file_names()
        .find(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no data.pkl inside: not a file written by torch.save"))?;
    let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
    if let Ok(mut order) = zip.by_name(&format!("{prefix}byteorder")) {
        let mut text = String::new();
        order.read_to_string(&mut text)?;
        ensure!(
            text.trim() == "little",
            "byte order '{text}' (only little-endian files are read)"
        );
    }
    let pickle = entry(&mut zip, &pickle_name)?;
    let Value::Dict(items) = Unpickler::new(&pickle).run()? else {
        bail!("data.pkl holds no dict of tensors (was a whole model saved instead of its state_dict?)");
    };
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    let mut tensors = Vec::with_capacity(items.len());
    for (name, value) in items {
        let Value::Str(name) = name else {
            bail!("a state_dict key is not a string: {name:?}");
        };
        let Value::Tensor(t) = value else {
            bail!("'{name}' is not a tensor: {value:?}");
        };
        if !storages.contains_key(&t.key) {
            let bytes = entry(&mut zip, &format!("{prefix}data/{}", t.key))?;
            let width = t.kind.elt_size_in_bytes();
            ensure!(
                bytes.len().is_multiple_of(width),
                "storage {} of '{name}' has {} bytes, not a whole number of {:?}",
                t.key,
                bytes.len(),
                t.kind
            );
            let numel = (bytes.len() / width) as i64;
            storages.insert(
                t.key.clone(),
                Tensor::from_data_size(&bytes, &[numel], t.kind),
            );
        }
        let storage = &storages[&t.key];
        let reach = t.offset
            + t.size
                .iter()
                .zip(&t.stride)
                .map(|(n, s)| (n - 1).max(0) * s)
                .sum::<i64>();
        ensure!(
            t.size.contains(&0) || reach < storage.numel() as i64,
            "'{name}' reaches past the end of its storage"
        );
        let tensor = storage
            .as_strided(&t.size, &t.stride, t.offset)
            .contiguous();
        tensors.push((name, tensor));
    }
    Ok(tensors)
}

fn entry<R: Read + std::io::Seek>(zip: &mut zip::ZipArchive<R>, name: &str) -> Result<Vec<u8>> {
    let mut f = zip
        .by_name(name)
        .with_context(|| format!("no entry {name}"))?;
    let mut bytes = Vec::with_capacity(f.size() as usize);
    f.read_to_end(&mut bytes)
        .with_context(|| format!("reading entry {name}"))?;
    Ok(bytes)
}

/// What the pickle builds: the Python values a state_dict is made of.
#[derive(Debug, Clone)]
#[allow(dead_code)] // some payloads are only ever shown, through Debug, in error messages
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    /// A storage named by a persistent id: its element type and its entry under `data/`.
    Storage {
        kind: Kind,
        key: String,
    },
    Tensor(TensorRef),
}

#[derive(Debug, Clone)]
struct TensorRef {
    kind: Kind,
    key: String,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

impl Value {
    fn int(&self) -> Result<i64> {
        match self {
            Value::Int(i) => Ok(*i),
            other => bail!("expected an integer, found {other:?}"),
        }
    }

    fn ints(&self) -> Result<Vec<i64>> {
        match self {
            Value::Tuple(v) | Value::List(v) => v.iter().map(Value::int).collect(),
            other => bail!("expected a tuple of integers, found {other:?}"),
        }
    }
}

/// The element type of a `torch.<Name>Storage`.
fn storage_kind(name: &str) -> Result<Kind> {
    Ok(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        other => bail!("unsupported storage type torch.{other}"),
    })
}

struct Unpickler<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    /// Stack heights at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl<'a> Unpickler<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| anyhow!("data.pkl ends in the middle of an opcode"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.at..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| anyhow!("data.pkl ends in the middle of an opcode"))?;
        let s = String::from_utf8(self.take(n)?.to_vec())?;
        self.at += 1;
        Ok(s)
    }

    fn string(&mut self, n: usize) -> Result<Value> {
        Ok(Value::Str(String::from_utf8(self.take(n)?.to_vec())?))
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack
            .pop()
            .ok_or_else(|| anyhow!("data.pkl pops an empty stack"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| anyhow!("data.pkl closes a MARK it never opened"))?;
        ensure!(
            mark <= self.stack.len(),
            "data.pkl's MARK lies above the stack"
        );
        Ok(self.stack.split_off(mark))
    }

    fn top(&mut self) -> Result<&mut Value> {
        self.stack
            .last_mut()
            .ok_or_else(|| anyhow!("data.pkl uses an empty stack"))
    }

    fn memoize(&mut self, key: u32) -> Result<()> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn recall(&mut self, key: u32) -> Result<()> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| anyhow!("data.pkl recalls memo {key}, which it never stored"))?;
        self.stack.push(v);
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        ensure!(
            items.len().is_multiple_of(2),
            "SETITEMS with an odd number of values"
        );
        let Value::Dict(dict) = self.top()? else {
            bail!("SETITEMS on something that is not a dict");
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            dict.push((k, v));
        }
        Ok(())
    }

    fn run(mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    ensure!(proto <= 5, "pickle protocol {proto}");
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint only
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(v.into()));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    ensure!(n <= 8, "integer of {n} bytes");
                    let bytes = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, b) in bytes.iter().enumerate() {
                        v |= i64::from(*b) << (8 * i);
                    }
                    if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into()?);
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    ensure!(
                        self.stack.len() >= n,
                        "data.pkl builds a tuple from too few values"
                    );
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b']' => self.stack.push(Value::List(Vec::new())),
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        Value::List(l) => l.push(v),
                        _ => bail!("APPEND to something that is not a list"),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(l) => l.extend(items),
                        _ => bail!("APPENDS to something that is not a list"),
                    }
                }
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'q' => {
                    let k = self.u8()?;
                    self.memoize(k.into())?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memoize(k)?;
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memoize(k)?;
                }
                b'h' => {
                    let k = self.u8()?;
                    self.recall(k.into())?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.recall(k)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    let (name, module) = (self.pop()?, self.pop()?);
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(m, n)),
                        _ => bail!("STACK_GLOBAL without two strings"),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = persistent(pid)?;
                    self.stack.push(storage);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = reduce(callable, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD sets attributes (a state_dict's `_metadata`): nothing we read.
                    self.pop()?;
                }
                other => bail!(
                    "unsupported pickle opcode 0x{other:02x} at byte {} of data.pkl",
                    self.at - 1
                ),
            }
        }
    }
}

/// A storage from its persistent id `('storage', torch.<Type>Storage, key, location, numel)`.
fn persistent(pid: Value) -> Result<Value> {
    match pid {
        Value::Tuple(v) if v.len() == 5 => match (&v[0], &v[1], &v[2]) {
            (Value::Str(tag), Value::Global(module, name), Value::Str(key))
                if tag == "storage" && module == "torch" =>
            {
                Ok(Value::Storage {
                    kind: storage_kind(name)?,
                    key: key.clone(),
                })
            }
            _ => bail!("unexpected persistent id {v:?}"),
        },
        other => bail!("unexpected persistent id {other:?}"),
    }
}

/// The few calls a state_dict pickle makes.
fn reduce(callable: Value, args: Value) -> Result<Value> {
    let Value::Global(module, name) = callable else {
        bail!("REDUCE on something that is not a global: {callable:?}");
    };
    let Value::Tuple(args) = args else {
        bail!("{module}.{name} called without an argument tuple");
    };
    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") if args.is_empty() => Ok(Value::Dict(Vec::new())),
        ("torch._utils", "_rebuild_tensor_v2") if args.len() >= 4 => {
            let Value::Storage { kind, key } = &args[0] else {
                bail!("_rebuild_tensor_v2 without a storage: {:?}", args[0]);
            };
            let (size, stride) = (args[2].ints()?, args[3].ints()?);
            ensure!(size.len() == stride.len(), "size and stride differ in rank");
            ensure!(
                size.iter().chain(&stride).all(|&n| n >= 0),
                "negative size or stride"
            );
            Ok(Value::Tensor(TensorRef {
                kind: *kind,
                key: key.clone(),
                offset: args[1].int()?,
                size,
                stride,
            }))
        }
        ("torch._utils", "_rebuild_parameter") if !args.is_empty() => Ok(args[0].clone()),
        _ => bail!(
            "data.pkl calls {module}.{name}, which a state_dict does not need (only plain state_dicts are read)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-assembled protocol-2 pickle of `OrderedDict(w=tensor of shape (2, 3),
    /// b=its transpose's first column)`, as `torch.save` lays it out.
    fn pickle() -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend(b"ccollections\nOrderedDict\nq\x00)R(");
        let tensor = |p: &mut Vec<u8>, name: &str, offset: u8, size: &[u8], stride: &[u8]| {
            p.push(b'X');
            p.extend((name.len() as u32).to_le_bytes());
            p.extend(name.as_bytes());
            p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage");
            p.extend(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ");
            p.extend([b'K', offset, b'(']);
            for s in size {
                p.extend([b'K', *s]);
            }
            p.extend(b"t(");
            for s in stride {
                p.extend([b'K', *s]);
            }
            p.extend(b"t\x89h\x00)Rtq\x01R");
        };
        tensor(&mut p, "w", 0, &[2, 3], &[3, 1]);
        tensor(&mut p, "b", 1, &[2], &[3]);
        p.extend(b"u}X\x09\x00\x00\x00_metadata}sb.");
        p
    }

    fn write_pt(path: &Path, pickle: &[u8]) {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        let opts =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("m/data.pkl", opts).unwrap();
        std::io::Write::write_all(&mut zip, pickle).unwrap();
        zip.start_file("m/byteorder", opts).unwrap();
        std::io::Write::write_all(&mut zip, b"little").unwrap();
        zip.start_file("m/data/0", opts).unwrap();
        let data: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        std::io::Write::write_all(&mut zip, &data).unwrap();
        zip.finish().unwrap();
    }

    #[test]
    fn reads_a_state_dict_with_shared_strided_storage() {
        let path = std::env::temp_dir().join(format!("pt-{}.pt", std::process::id()));
        write_pt(&path, &pickle());
        assert!(is_pytorch_file(&path));
        let t = read_state_dict(&path).unwrap();
        assert_eq!(t[0].0, "w");
        assert_eq!(t[0].1.size(), [2, 3]);
        assert_eq!(
            Vec::<f32>::try_from(t[0].1.flatten(0, -1)).unwrap(),
            [0., 1., 2., 3., 4., 5.]
        );
        assert_eq!(t[1].0, "b");
        assert_eq!(Vec::<f32>::try_from(&t[1].1).unwrap(), [1., 4.]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn refuses_code_it_does_not_know() {
        let path = std::env::temp_dir().join(format!("pt-evil-{}.pt", std::process::id()));
        let evil = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.".to_vec();
        write_pt(&path, &evil);
        let err = format!("{:#}", read_state_dict(&path).unwrap_err());
        assert!(
            err.contains("os.system") && err.contains(&*path.to_string_lossy()),
            "{err}"
        );
        let mut cut = pickle();
        cut.truncate(40);
        write_pt(&path, &cut);
        let err = format!("{:#}", read_state_dict(&path).unwrap_err());
        assert!(err.contains("ends in the middle"), "{err}");
        std::fs::remove_file(path).unwrap();
    }
}
