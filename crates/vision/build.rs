fn main() {
    torch_link::emit();
    torch_link::compile_cpp("src/fast/norm_pool.cpp", "vision_norm_pool");
    torch_link::compile_cpp("src/fast/linear.cpp", "vision_linear");
}
