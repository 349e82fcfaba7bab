#include <cstdio>
int main() { std::puts("cgan_gpu: under construction"); return 0; }
