fn main() {
    torch_link::emit();
    torch_link::compile_cpp("src/norm_pool.cpp", "vision_norm_pool");
    torch_link::compile_cpp("src/linear.cpp", "vision_linear");
}
