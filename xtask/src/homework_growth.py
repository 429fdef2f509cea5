"""The homework's side of `cargo xtask growth --homework DIR --python PY`.

Imports the homework's own modules from DIR (the published files, kept outside this
repository; nothing of them is copied here) and times one epoch of training steps, as its
training loops take them, with 1/4, 1/2, 1 and 2 times the training set (a seeded sample, or
the set repeated) for Q2 model 2.2 and Q3 (b), and with Q3's hidden sizes 64, 128 and 256.
Prints one `growth <q2|q3> <size|hidden> <x> <examples> <seconds>` line per epoch, the
format of our benches' lines, which the xtask reads. Validation, checkpoints and plots are
left out on both sides: they do not grow with the training set.
"""

import argparse
import functools
import importlib.util
import os
import sys
import time

import torch
from torch.utils.data import DataLoader, Subset

SIZES = [0.25, 0.5, 1.0, 2.0]
HIDDEN = [64, 128, 256]


def scaled(dataset, factor):
    """`factor` of `dataset`: a seeded sample below 1, the set repeated above."""
    n = round(len(dataset) * factor)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0)).tolist()
    return Subset(dataset, [order[i % len(dataset)] for i in range(n)])


def report(question, axis, x, examples, seconds):
    print(f"growth {question} {axis} {x} {examples} {seconds:.3f}", flush=True)


def q2(homework, npz):
    folder = os.path.join(homework, "hw2-q2")
    sys.path.insert(0, folder)  # its `import utils`
    spec = importlib.util.spec_from_file_location("hw2_q2", os.path.join(folder, "hw2-q2.py"))
    hw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hw)
    utils = sys.modules["utils"]
    utils.configure_seed(seed=42)
    dataset = utils.ClassificationDataset(utils.load_dataset(data_path=npz))
    criterion = torch.nn.NLLLoss()

    def epoch(train):
        model = hw.CNN(0.1, maxpool=True, batch_norm=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        loader = DataLoader(train, batch_size=8, shuffle=True)
        model.train()
        start = time.perf_counter()
        for x, y in loader:
            hw.train_batch(x, y, model, optimizer, criterion)
        return time.perf_counter() - start

    epoch(scaled(dataset, 0.25))  # warm-up: first-touch memory, kernel selection
    for factor in SIZES:
        train = scaled(dataset, factor)
        report("q2", "size", factor, len(train), epoch(train))


def q3(homework, p2g):
    sys.path.insert(0, os.path.join(homework, "hw2-q3"))
    import data
    import models

    torch.manual_seed(42)
    dataset = data.Seq2SeqDataset(os.path.join(p2g, "train.tsv"))
    collate = functools.partial(data.collate_samples, padding_idx=data.PAD_IDX)
    criterion = torch.nn.CrossEntropyLoss(ignore_index=data.PAD_IDX)

    def epoch(train, hidden):
        encoder = models.Encoder(dataset.src_vocab.vocab_size, hidden, data.PAD_IDX, 0.3)
        attention = models.BahdanauAttention(hidden)
        decoder = models.Decoder(
            hidden, dataset.tgt_vocab.vocab_size, attention, data.PAD_IDX, 0.3
        )
        model = models.Seq2Seq(encoder, decoder)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
        loader = DataLoader(train, batch_size=64, shuffle=True, collate_fn=collate)
        model.train()
        start = time.perf_counter()
        # The homework's `train` loop, one epoch, without its validation decoding.
        for src, tgt in loader:
            src_lengths = (src != data.PAD_IDX).sum(1)
            optimizer.zero_grad()
            outputs, _ = model(src, src_lengths, tgt)
            loss = criterion(outputs.reshape(-1, outputs.shape[-1]), tgt[:, 1:].reshape(-1))
            loss.backward()
            optimizer.step()
        return time.perf_counter() - start

    epoch(scaled(dataset, 0.25), 128)  # warm-up
    for factor in SIZES:
        train = scaled(dataset, factor)
        report("q3", "size", factor, len(train), epoch(train, 128))
    for hidden in HIDDEN:
        report("q3", "hidden", hidden, len(dataset), epoch(dataset, hidden))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homework", required=True, help="folder with hw2-q2/ and hw2-q3/")
    parser.add_argument("--npz", required=True, help="Q2's npz")
    parser.add_argument("--p2g", required=True, help="folder with Q3's train.tsv")
    parser.add_argument("--only", default="q2,q3")
    args = parser.parse_args()
    only = args.only.split(",")
    if "q2" in only:
        q2(args.homework, args.npz)
    if "q3" in only:
        q3(args.homework, args.p2g)


if __name__ == "__main__":
    main()
