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
//!
//! The file is untrusted (checkpoints are downloaded from strangers), so every size in it is
//! checked before it is believed: no entry may claim more bytes than the file holds, nor all
//! entries together; values copied out of the pickle's memo are charged to a budget of a few
//! times the pickle's size (a memo copied into itself grows exponentially otherwise); values
//! nest at most [`MAX_DEPTH`] deep; and a tensor's geometry must lie inside its storage, its
//! elements together within a few times the file's size. Whatever the bytes, the reader
//! returns an error, never panics, aborts or exhausts memory (fuzzed in `crates/fuzz`).

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

/// How deep the pickle's values may nest: a state_dict needs five levels.
pub const MAX_DEPTH: usize = 64;

/// What reading the tensors may cost beyond the file: bytes per byte of the file, plus a
/// constant for small files.
const TENSOR_BYTES_PER_FILE_BYTE: u64 = 4;
const SLACK_BYTES: u64 = 1 << 20;

fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let file = std::fs::File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut zip = zip::ZipArchive::new(file).context("not a zip archive")?;
    // Entries may overlap in a crafted archive: what they yield together is bounded too.
    let mut entry_budget = file_len;
    let pickle_name = zip
        .file_names()
        .find(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no data.pkl inside: not a file written by torch.save"))?;
    let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
    let order_name = format!("{prefix}byteorder");
    if zip.file_names().any(|n| n == order_name) {
        let order = entry(&mut zip, &order_name, &mut entry_budget)?;
        ensure!(
            order.trim_ascii() == b"little",
            "byte order '{}' (only little-endian files are read)",
            brief(&String::from_utf8_lossy(&order))
        );
    }
    let pickle = entry(&mut zip, &pickle_name, &mut entry_budget)?;
    let Value::Dict(items) = Unpickler::new(&pickle).run()? else {
        bail!("data.pkl holds no dict of tensors (was a whole model saved instead of its state_dict?)");
    };
    let mut tensor_budget = file_len
        .saturating_mul(TENSOR_BYTES_PER_FILE_BYTE)
        .saturating_add(SLACK_BYTES);
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    let mut tensors = Vec::with_capacity(items.len());
    for (name, value) in items {
        let Value::Str(name) = name else {
            bail!("a state_dict key is not a string but {}", name.describe());
        };
        let name = brief(&name);
        let Value::Tensor(t) = value else {
            bail!("'{name}' is not a tensor but {}", value.describe());
        };
        if !storages.contains_key(&t.key) {
            let key = format!("{prefix}data/{}", t.key);
            let bytes = entry(&mut zip, &key, &mut entry_budget)?;
            let width = t.kind.elt_size_in_bytes();
            ensure!(
                bytes.len().is_multiple_of(width),
                "storage {} of '{name}' has {} bytes, not a whole number of {:?}",
                brief(&t.key),
                bytes.len(),
                t.kind
            );
            let numel = (bytes.len() / width) as i64;
            let storage = Tensor::f_from_data_size(&bytes, &[numel], t.kind)?;
            storages.insert(t.key.clone(), storage);
        }
        let storage = &storages[&t.key];
        let numel = t.numel_within(storage.numel() as i64).map_err(|why| {
            anyhow!(
                "'{name}' (sizes {:?}, strides {:?}, offset {}): {why}",
                t.size,
                t.stride,
                t.offset
            )
        })?;
        let bytes = (numel as u64).saturating_mul(t.kind.elt_size_in_bytes() as u64);
        tensor_budget = tensor_budget.checked_sub(bytes).ok_or_else(|| {
            anyhow!("'{name}' would take {bytes} bytes: the tensors together would take more than {TENSOR_BYTES_PER_FILE_BYTE} times the file's size")
        })?;
        let tensor = storage
            .f_as_strided(&t.size, &t.stride, t.offset)?
            .f_contiguous()?;
        tensors.push((name, tensor));
    }
    Ok(tensors)
}

/// The bytes of entry `name`, charged to `budget`: no entry may claim more than the bytes
/// left of the file (a header may declare 2^62).
fn entry<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    budget: &mut u64,
) -> Result<Vec<u8>> {
    let f = zip
        .by_name(name)
        .with_context(|| format!("no entry {}", brief(name)))?;
    let size = f.size();
    ensure!(
        size <= *budget,
        "entry {} declares {size} bytes, more than the file has left to give ({budget})",
        brief(name)
    );
    *budget -= size;
    let mut bytes = Vec::with_capacity(size as usize);
    f.take(size)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading entry {}", brief(name)))?;
    ensure!(
        bytes.len() as u64 == size,
        "entry {} holds {} bytes, not the {size} its header declares",
        brief(name),
        bytes.len()
    );
    Ok(bytes)
}

/// At most 80 characters of `text`, control characters escaped, for error messages (a
/// crafted file's names may hold line breaks).
fn brief(text: &str) -> String {
    let escaped = |s: &str| s.escape_debug().to_string();
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", escaped(&text[..at])),
        None => escaped(text),
    }
}

/// What the pickle builds: the Python values a state_dict is made of.
#[derive(Debug, Clone)]
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
            other => bail!("expected an integer, found {}", other.describe()),
        }
    }

    fn ints(&self) -> Result<Vec<i64>> {
        match self {
            Value::Tuple(v) | Value::List(v) => v.iter().map(Value::int).collect(),
            other => bail!("expected a tuple of integers, found {}", other.describe()),
        }
    }

    /// A few words for error messages (never the whole of a large value).
    fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Int(i) => format!("the integer {i}"),
            Value::Float(x) => format!("the float {x}"),
            Value::Str(s) => format!("the string '{}'", brief(s)),
            Value::Tuple(v) => format!("a tuple of {} values", v.len()),
            Value::List(v) => format!("a list of {} values", v.len()),
            Value::Dict(v) => format!("a dict of {} items", v.len()),
            Value::Global(m, n) => format!("the global {}.{}", brief(m), brief(n)),
            Value::Storage { kind, .. } => format!("a {kind:?} storage"),
            Value::Tensor(t) => format!("a {:?} tensor of sizes {:?}", t.kind, t.size),
        }
    }

    /// What a copy of the value costs, in bytes (a node's size, plus its strings' bytes), and
    /// an error when it nests more than `depth` levels deep.
    fn weigh(&self, depth: usize) -> Result<usize> {
        let Some(depth) = depth.checked_sub(1) else {
            bail!("data.pkl nests values more than {MAX_DEPTH} levels deep");
        };
        let node = std::mem::size_of::<Value>();
        Ok(node
            + match self {
                Value::Str(s) => s.len(),
                Value::Global(m, n) => m.len() + n.len(),
                Value::Storage { key, .. } => key.len(),
                Value::Tensor(t) => t.key.len() + 8 * (t.size.len() + t.stride.len()),
                Value::Tuple(v) | Value::List(v) => {
                    let mut sum = 0usize;
                    for x in v {
                        sum = sum.saturating_add(x.weigh(depth)?);
                    }
                    sum
                }
                Value::Dict(v) => {
                    let mut sum = 0usize;
                    for (k, x) in v {
                        sum = sum
                            .saturating_add(k.weigh(depth)?)
                            .saturating_add(x.weigh(depth)?);
                    }
                    sum
                }
                Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_) => 0,
            })
    }
}

impl TensorRef {
    /// The tensor's element count, when its sizes, strides and offset lie within a storage
    /// of `storage` elements; else why not.
    fn numel_within(&self, storage: i64) -> std::result::Result<i64, String> {
        if self.offset < 0 || self.offset > storage {
            return Err(format!(
                "its offset lies outside its storage of {storage} elements"
            ));
        }
        let numel = self
            .size
            .iter()
            .try_fold(1i64, |n, &s| n.checked_mul(s))
            .ok_or("its sizes multiply past 2^63")?;
        if numel == 0 {
            return Ok(0);
        }
        let reach = self
            .size
            .iter()
            .zip(&self.stride)
            .try_fold(self.offset, |r, (&n, &s)| {
                r.checked_add((n - 1).checked_mul(s)?)
            })
            .ok_or("its strides reach past 2^63")?;
        if reach >= storage {
            return Err(format!(
                "it reaches past the end of its storage of {storage} elements"
            ));
        }
        Ok(numel)
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
        other => bail!("unsupported storage type torch.{}", brief(other)),
    })
}

struct Unpickler<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    /// Stack heights at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Bytes that copies out of the memo may still take.
    budget: usize,
}

impl<'a> Unpickler<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            budget: bytes
                .len()
                .saturating_mul(8)
                .saturating_add(SLACK_BYTES as usize),
        }
    }

    /// Checks that a value about to go into a container nests no deeper than allowed.
    fn nest(&self, v: &Value) -> Result<()> {
        v.weigh(MAX_DEPTH - 1).map(|_| ())
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
        let v = self.top()?;
        let cost = v.weigh(MAX_DEPTH)?;
        let v = v.clone();
        self.charge(cost)?;
        self.memo.insert(key, v);
        Ok(())
    }

    /// Charges a copy of `cost` bytes to the budget: a pickle that copies far more than a
    /// state_dict's does is refused before it exhausts memory.
    fn charge(&mut self, cost: usize) -> Result<()> {
        self.budget = self.budget.checked_sub(cost).ok_or_else(|| {
            anyhow!("data.pkl copies values through its memo far more than a state_dict does (a memo loop?)")
        })?;
        Ok(())
    }

    fn recall(&mut self, key: u32) -> Result<()> {
        let v = self
            .memo
            .get(&key)
            .ok_or_else(|| anyhow!("data.pkl recalls memo {key}, which it never stored"))?;
        // Each recall is a copy: charged, so that a memo copied into itself cannot grow
        // without bound.
        let cost = v.weigh(MAX_DEPTH)?;
        let v = v.clone();
        self.charge(cost)?;
        self.stack.push(v);
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        ensure!(
            items.len().is_multiple_of(2),
            "SETITEMS with an odd number of values"
        );
        for v in &items {
            self.nest(v)?;
        }
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
                    items.iter().try_for_each(|v| self.nest(v))?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    ensure!(
                        self.stack.len() >= n,
                        "data.pkl builds a tuple from too few values"
                    );
                    let items = self.stack.split_off(self.stack.len() - n);
                    items.iter().try_for_each(|v| self.nest(v))?;
                    self.stack.push(Value::Tuple(items));
                }
                b']' => self.stack.push(Value::List(Vec::new())),
                b'a' => {
                    let v = self.pop()?;
                    self.nest(&v)?;
                    match self.top()? {
                        Value::List(l) => l.push(v),
                        _ => bail!("APPEND to something that is not a list"),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    items.iter().try_for_each(|v| self.nest(v))?;
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
            _ => bail!("unexpected persistent id: a tuple of 5 values, not ('storage', torch.<Type>Storage, key, ...)"),
        },
        other => bail!("unexpected persistent id: {}", other.describe()),
    }
}

/// The few calls a state_dict pickle makes.
fn reduce(callable: Value, args: Value) -> Result<Value> {
    let Value::Global(module, name) = callable else {
        bail!(
            "REDUCE on something that is not a global: {}",
            callable.describe()
        );
    };
    let Value::Tuple(args) = args else {
        bail!(
            "{}.{} called without an argument tuple",
            brief(&module),
            brief(&name)
        );
    };
    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") if args.is_empty() => Ok(Value::Dict(Vec::new())),
        ("torch._utils", "_rebuild_tensor_v2") if args.len() >= 4 => {
            let Value::Storage { kind, key } = &args[0] else {
                bail!("_rebuild_tensor_v2 without a storage: {}", args[0].describe());
            };
            let (size, stride) = (args[2].ints()?, args[3].ints()?);
            ensure!(size.len() == stride.len(), "size and stride differ in rank");
            ensure!(size.len() <= MAX_DEPTH, "a tensor of {} dimensions", size.len());
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
            "data.pkl calls {}.{}, which a state_dict does not need (only plain state_dicts are read)",
            brief(&module),
            brief(&name)
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

    /// The file's error for a data.pkl of `pickle`, and `path` for the caller to check.
    fn error_for(name: &str, pickle: &[u8]) -> String {
        let path = std::env::temp_dir().join(format!("pt-{name}-{}.pt", std::process::id()));
        write_pt(&path, pickle);
        let err = format!("{:#}", read_state_dict(&path).unwrap_err());
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains(&*path.to_string_lossy()), "{err}");
        err
    }

    #[test]
    fn a_memo_copied_into_itself_is_refused_before_it_grows() {
        // L = []; 40 times: L = L + [L, L] through the memo: 3^40 values if believed.
        let mut p = b"\x80\x02]q\x00".to_vec();
        for _ in 0..40 {
            p.extend(b"h\x00(h\x00h\x00eq\x00");
        }
        p.push(b'.');
        let err = error_for("memo", &p);
        assert!(
            err.contains("a memo loop?") || err.contains("levels deep"),
            "{err}"
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let mut p = b"\x80\x02".to_vec();
        p.extend(std::iter::repeat_n(b']', 200_000));
        p.extend(std::iter::repeat_n(b'a', 199_999));
        p.push(b'.');
        let err = error_for("deep", &p);
        assert!(err.contains("more than 64 levels deep"), "{err}");
    }

    /// A state_dict pickle of one tensor `w` with the given offset, sizes and strides (each
    /// an 8-byte integer) over storage `0`.
    fn one_tensor(offset: i64, size: &[i64], stride: &[i64]) -> Vec<u8> {
        let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x00)R(X\x01\x00\x00\x00w".to_vec();
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage");
        p.extend(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ");
        let long = |p: &mut Vec<u8>, v: i64| {
            p.extend([0x8a, 8]);
            p.extend(v.to_le_bytes());
        };
        long(&mut p, offset);
        p.push(b'(');
        size.iter().for_each(|&v| long(&mut p, v));
        p.extend(b"t(");
        stride.iter().for_each(|&v| long(&mut p, v));
        p.extend(b"t\x89h\x00)RtR");
        p.extend(b"u.");
        p
    }

    #[test]
    fn tensor_geometry_outside_its_storage_is_refused() {
        // The storage holds 6 floats: this view of the last 4, transposed, is fine.
        let path = std::env::temp_dir().join(format!("pt-view-{}.pt", std::process::id()));
        write_pt(&path, &one_tensor(2, &[2, 2], &[1, 2]));
        let t = read_state_dict(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(t[0].1.flatten(0, -1)).unwrap(),
            [2., 4., 3., 5.]
        );
        for (offset, size, stride, expected) in [
            (-1, vec![2], vec![1], "offset lies outside"),
            (7, vec![0], vec![1], "offset lies outside"),
            (0, vec![1 << 32, 1 << 32], vec![0, 0], "multiply past 2^63"),
            (
                0,
                vec![1 << 20, 1 << 20],
                vec![0, 0],
                "more than 4 times the file's size",
            ),
            (0, vec![3, 3], vec![3, 1], "reaches past the end"),
            (1, vec![2, i64::MAX / 2], vec![4, 2], "reach past 2^63"),
        ] {
            let err = error_for("geometry", &one_tensor(offset, &size, &stride));
            assert!(
                err.contains(expected),
                "{offset} {size:?} {stride:?}: {err}"
            );
        }
    }

    #[test]
    fn an_entry_declaring_more_bytes_than_the_file_is_refused() {
        let path = std::env::temp_dir().join(format!("pt-zip64-{}.pt", std::process::id()));
        write_pt(&path, &pickle());
        // data.pkl's central-directory record claims 2^62 bytes through a zip64 field.
        let mut b = std::fs::read(&path).unwrap();
        let cd = b.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        let name_len = u16::from_le_bytes([b[cd + 28], b[cd + 29]]) as usize;
        assert_eq!(&b[cd + 46..cd + 46 + name_len], b"m/data.pkl");
        b[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
        b[cd + 30..cd + 32].copy_from_slice(&12u16.to_le_bytes());
        let mut extra = vec![1, 0, 8, 0];
        extra.extend((1u64 << 62).to_le_bytes());
        b.splice(cd + 46 + name_len..cd + 46 + name_len, extra);
        let eocd = b.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap();
        let cd_size = u32::from_le_bytes(b[eocd + 12..eocd + 16].try_into().unwrap()) + 12;
        b[eocd + 12..eocd + 16].copy_from_slice(&cd_size.to_le_bytes());
        std::fs::write(&path, b).unwrap();
        let err = format!("{:#}", read_state_dict(&path).unwrap_err());
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("declares 4611686018427387904 bytes"), "{err}");
    }
}
