fn main() {
    torch_link::emit();
    torch_link::compile_cpp("src/fast/additive.cpp", "seq2seq_additive");
}
