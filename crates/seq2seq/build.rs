fn main() {
    torch_link::emit();
    torch_link::compile_cpp("src/additive.cpp", "seq2seq_additive");
}
