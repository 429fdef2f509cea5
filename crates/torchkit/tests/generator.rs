//! Draw-for-draw properties of libtorch's global generator. They live in their own test
//! binary, and take turns through [`exclusive`]: a test drawing in another thread between a
//! seed and the draws compared would make them fail by chance.

use tch::{Device, Kind, Tensor};
use torchkit::fast::dropout as fast_dropout;
use torchkit::rng::{dropout, exclusive, loader_order, seed};

/// On this project's AMD machines this compares our faster draw with libtorch's kernel; on
/// an Intel CPU `dropout` is libtorch's own (MKL path), and the test says which it checked.
#[test]
fn dropout_is_libtorch_dropout_bit_for_bit() {
    eprintln!(
        "checking {} against libtorch's dropout",
        if torchkit::rng::mkl_bernoulli() {
            "libtorch's own dropout (Intel CPU: MKL draws)"
        } else {
            "the uniform_ draw"
        }
    );
    let _generator = exclusive();
    let nhwc = |x: Tensor| x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
    let cases = [
        (vec![7i64], 0.3),
        (vec![64, 17, 128], 0.3),
        (vec![8, 32, 24, 24], 0.1),
    ];
    for (k, (shape, p)) in cases.into_iter().enumerate() {
        let x = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
        // The 4-D case in channels-last memory, as the vision models run.
        let x = if k == 2 { nhwc(x) } else { x };
        seed(9);
        let theirs = x.dropout(p, true);
        let next_theirs = Tensor::rand([4], (Kind::Float, Device::Cpu));
        seed(9);
        let ours = dropout(&x, p, true);
        let next_ours = Tensor::rand([4], (Kind::Float, Device::Cpu));
        assert!(ours.equal(&theirs), "shape {shape:?}: outputs differ");
        assert_eq!(ours.stride(), x.stride(), "the layout is kept");
        assert!(
            next_ours.equal(&next_theirs),
            "the generator moved differently"
        );
        let zeros = ours
            .eq(0.0)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
        assert!(
            (zeros - p).abs() < 0.05 || x.numel() < 100,
            "dropped {zeros}, not {p}"
        );
    }
    let x = Tensor::ones([5], (Kind::Float, Device::Cpu));
    assert!(dropout(&x, 0.5, false).equal(&x), "identity in eval mode");
}

/// The fast dropout: PyTorch's distribution (drop with probability p, scale the rest by
/// 1/(1 − p)), the input's layout, repeatable from a seed, and independent masks each call.
#[test]
fn fast_dropout_has_dropouts_distribution_and_is_seeded() {
    let _generator = exclusive();
    let p = 0.3;
    let x = Tensor::randn([64, 33, 127], (Kind::Float, Device::Cpu)); // odd count: a lone last element
    seed(5);
    let a = fast_dropout(&x, p, true);
    let after_a = Tensor::rand([4], (Kind::Float, Device::Cpu));
    seed(5);
    let b = fast_dropout(&x, p, true);
    let after_b = Tensor::rand([4], (Kind::Float, Device::Cpu));
    assert!(a.equal(&b), "the same seed, the same mask");
    assert!(after_a.equal(&after_b), "the generator moves alike");
    assert!(!fast_dropout(&x, p, true).equal(&a), "a new mask each call");
    let kept = a.ne(0.0);
    let dropped = 1.0
        - kept
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
    // 268,224 elements: the standard error of the dropped share is 0.0009.
    assert!((dropped - p).abs() < 0.005, "dropped {dropped}, not {p}");
    let scaled = (&x / (1.0 - p)).masked_select(&kept);
    let max_err = (a.masked_select(&kept) - scaled)
        .abs()
        .max()
        .double_value(&[]);
    assert!(max_err < 1e-5, "kept values are x/(1-p): {max_err}");
    let nhwc = Tensor::randn([8, 32, 24, 24], (Kind::Float, Device::Cpu))
        .permute([0, 2, 3, 1])
        .contiguous()
        .permute([0, 3, 1, 2]);
    let y = fast_dropout(&nhwc, 0.1, true);
    assert_eq!(
        y.stride(),
        nhwc.stride(),
        "channels-last stays channels-last"
    );
    let narrowed = x.narrow(2, 1, 50);
    assert_eq!(fast_dropout(&narrowed, p, true).size(), narrowed.size());
    assert!(
        fast_dropout(&x, p, false).equal(&x),
        "identity in eval mode"
    );
}

#[test]
fn a_restored_generator_state_draws_the_same_numbers() {
    let _generator = exclusive();
    seed(3);
    let _ = Tensor::rand([10], (Kind::Float, Device::Cpu));
    let saved = torchkit::rng::state(Device::Cpu).unwrap();
    assert_eq!(
        saved.len(),
        5056,
        "torch.get_rng_state() is 5,056 bytes on the CPU"
    );
    let a = Tensor::rand([1000], (Kind::Double, Device::Cpu));
    let perm_a = loader_order(50);
    seed(99); // anything in between
    let _ = Tensor::randn([77], (Kind::Float, Device::Cpu));
    torchkit::rng::set_state(Device::Cpu, &saved).unwrap();
    let b = Tensor::rand([1000], (Kind::Double, Device::Cpu));
    assert!(a.equal(&b), "the same draws after the restore");
    assert_eq!(perm_a, loader_order(50));
    assert!(torchkit::rng::set_state(Device::Cpu, &saved[..100]).is_err());
}

#[test]
fn same_seed_same_loader_order() {
    let _generator = exclusive();
    seed(42);
    let a = loader_order(100);
    seed(42);
    let b = loader_order(100);
    assert_eq!(a, b);
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, (0..100).collect::<Vec<i64>>());
    assert_ne!(a, loader_order(100), "the generator moves on");
}

#[test]
fn a_seeded_private_permutation_leaves_the_global_generator_alone() {
    let _generator = exclusive();
    seed(1);
    let a = torchkit::rng::randperm_seeded(7, 1000);
    let after = Tensor::rand([3], (Kind::Float, Device::Cpu));
    seed(1);
    assert_eq!(
        torchkit::rng::randperm_seeded(7, 1000),
        a,
        "the same seed, the same order"
    );
    assert!(after.equal(&Tensor::rand([3], (Kind::Float, Device::Cpu))));
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, (0..1000).collect::<Vec<i64>>());
    assert_ne!(torchkit::rng::randperm_seeded(8, 1000), a);
    // A loader's epoch takes two draws from the global generator, both non-negative.
    seed(1);
    let (x, y) = (torchkit::rng::loader_seed(), torchkit::rng::loader_seed());
    assert!(x >= 0 && y >= 0 && x != y);
    seed(1);
    assert_eq!(
        torchkit::rng::loader_order(50),
        torchkit::rng::randperm_seeded(y as u64, 50)
    );
}
