fn main() {
    torch_link::emit();
    torch_link::compile_cpp("src/generator_state.cpp", "torchkit_generator_state");
}
