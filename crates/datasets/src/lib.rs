//! Every file the project reads but does not make: the homework's datasets and the seed
//! report's trained weights, each with its public URL, size and SHA-256 (one place for
//! them all; the xtask downloads and verifies them with `fetch`), and [`local`], which
//! finds them on this machine for tests and benches.

pub mod local;

/// A file with its public URL and checksum.
#[derive(Debug, Clone, Copy)]
pub struct RemoteFile {
    /// File name in its local folder.
    pub name: &'static str,
    /// Where to download it (for Google Drive: the file id).
    pub url: &'static str,
    /// Lower-case hex SHA-256.
    pub sha256: &'static str,
    /// Size in bytes.
    pub size: u64,
}

macro_rules! p2g_url {
    ($name:literal) => {
        concat!(
            "https://raw.githubusercontent.com/Miguel-Miranda019/AP-2-2024-2025/",
            "100c03107e33d688cf1368ff34b48f6f73106c88/hw2-q3/data/",
            $name
        )
    };
}

/// Q3: the phoneme-to-grapheme TSV files (public copies of the course data), kept in
/// `<data>/p2g/`.
pub const P2G: [RemoteFile; 3] = [
    RemoteFile {
        name: "train.tsv",
        url: p2g_url!("train.tsv"),
        sha256: "c8bae375a8abe7274a6823444c37ce64e78b3520bd652d82a20d40506a5bb1a2",
        size: 266_320,
    },
    RemoteFile {
        name: "valid.tsv",
        url: p2g_url!("valid.tsv"),
        sha256: "3f69895ebb1ea3dc06de43bb81dd00bb1078817207a2d83f378544e5b57fe8c6",
        size: 26_320,
    },
    RemoteFile {
        name: "test.tsv",
        url: p2g_url!("test.tsv"),
        sha256: "d62cc3dbfc876cec843ee32f6d2b6ec5da1fde7b84e7a512706245e85c168fae",
        size: 26_566,
    },
];

/// Q2: the Intel landscapes npz on Google Drive (`url` is the Drive file id).
pub const INTEL: RemoteFile = RemoteFile {
    name: "intel_landscapes.v2.npz",
    url: "1Ds7hPKMuorR7Ad38ww0_DYIwM9Km_cgc",
    sha256: "44f2b728076124139b99d5de4b55de80d94a886059bedd0f993eecc0f380778c",
    size: 117_876_826,
};

/// SHA-256 of `fashion6.npz` as the workplace's `make-fashion6.sh` builds it
/// (deterministic): real Fashion-MNIST images in the Intel file's layout, the substitute
/// for Q2 where Google Drive is out of reach.
pub const FASHION6_SHA256: &str =
    "74b8e3d07416fc5fdd09132eabcba85dc7c5bc3d46ba3c3fcf9ff18f5878bb6b";

macro_rules! seed_url {
    ($name:literal) => {
        concat!(
            "https://raw.githubusercontent.com/Diogorrib/deep_learning_hw/",
            "8b4ec7e1188581d43756a4cfca3451ad592cbbdf/hw2/hw2-q3/out/",
            $name
        )
    };
}

/// The seed report's trained Q3 weights, as the homework's code saved them
/// (`torch.save(model.state_dict())`), kept in `<data>/checkpoints/`. Decoding the test set
/// with them must print the seed report's exact lines.
pub const SEED_CHECKPOINTS: [RemoteFile; 2] = [
    RemoteFile {
        name: "seed-no-attn.pt",
        url: seed_url!("no-attn.pt"),
        sha256: "bbd95d6f75242bc3506cc941294be557fb5f3dfad94333c2a31926e86deac996",
        size: 1_033_321,
    },
    RemoteFile {
        name: "seed-attn.pt",
        url: seed_url!("attn.pt"),
        sha256: "60fe19951cc5152d872203f8fffeeb53f584084d1268ccf710babe8b11ec6cd0",
        size: 1_296_536,
    },
];
