# The CUDA backend (cuda/*.cu, cuda/*.cpp) as the static library cgan_cuda, linked into cgan_core.
# Included by the top-level CMakeLists.txt when a CUDA compiler is found and cuda/ has sources.
#
# Variables the user may set (cache):
#   CMAKE_CUDA_ARCHITECTURES  GPUs to build for (default "80;90", or $CUDAARCHS: A100 and H100
#                             machine code plus their PTX, so newer GPUs can JIT; Ampere 8.6/8.9
#                             run the sm_80 code). "native" builds for the local GPU only.
#   CUDNN_ROOT                where cuDNN is (folder with include/ and lib/), also read from the
#                             environment; e.g. PyTorch's copy:
#                             python3 -c "import nvidia.cudnn as c; print(c.__path__[0])"
#   CGAN_WITH_CUDNN           link cuDNN when found (default ON); defines CGAN_HAVE_CUDNN.
#   CGAN_CUDA_STATIC_RUNTIME  link the CUDA runtime statically (default ON: binaries carried to
#                             another machine need only the driver, cuBLAS and cuDNN there).
# Result in the parent scope: CGAN_HAVE_CUDA ON, CGAN_HAVE_CUDNN ON/OFF.

if((NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
   AND "$ENV{CUDAARCHS}" STREQUAL "")
  set(CMAKE_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures to build for" FORCE)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_EXTENSIONS OFF)

option(CGAN_WITH_CUDNN "Link cuDNN into the CUDA backend when it is found" ON)
option(CGAN_CUDA_STATIC_RUNTIME "Link the CUDA runtime statically" ON)
set(CUDNN_ROOT "$ENV{CUDNN_ROOT}" CACHE PATH "cuDNN folder (with include/ and lib/)")

file(GLOB CGAN_CUDA_LIB_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cu
     ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
add_library(cgan_cuda STATIC ${CGAN_CUDA_LIB_SOURCES})
target_include_directories(cgan_cuda PUBLIC ${CMAKE_SOURCE_DIR}/include ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(cgan_cuda PUBLIC CGAN_HAVE_CUDA)
string(REPLACE ";" "," CGAN_CUDA_ARCHS_TEXT "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_definitions(cgan_cuda PRIVATE CGAN_CUDA_ARCHS="${CGAN_CUDA_ARCHS_TEXT}")
set_target_properties(cgan_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON
                                           CUDA_SEPARABLE_COMPILATION OFF)
# -lineinfo: source lines for ncu / compute-sanitizer at no run-time cost. The kernels must agree
# with the CPU backend, so no fast math (IEEE division and square root, accurate expf/tanhf) and
# --fmad=false: a*b+c rounds twice as on the CPU (baseline x86-64 has no FMA) instead of being
# contracted into one FMA. Our kernels are memory-bound, so FMA would buy nothing; cuBLAS is not
# affected.
target_compile_options(cgan_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>
  $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo --fmad=false -Xcompiler=-Wall,-Wextra
                             --Werror=cross-execution-space-call>)

if(CGAN_CUDA_STATIC_RUNTIME)
  set_target_properties(cgan_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Static)
  target_link_libraries(cgan_cuda PUBLIC CUDA::cudart_static)
else()
  set_target_properties(cgan_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
  target_link_libraries(cgan_cuda PUBLIC CUDA::cudart)
endif()
target_link_libraries(cgan_cuda PUBLIC CUDA::cublas)

# NVTX 3 is header-only (CUDA::nvtx3 since CMake 3.25; else the toolkit's include/nvtx3).
if(TARGET CUDA::nvtx3)
  target_link_libraries(cgan_cuda PRIVATE CUDA::nvtx3)
else()
  find_path(CGAN_NVTX3_INCLUDE_DIR nvtx3/nvToolsExt.h HINTS ${CUDAToolkit_INCLUDE_DIRS} REQUIRED)
  target_include_directories(cgan_cuda PRIVATE ${CGAN_NVTX3_INCLUDE_DIR})
  target_link_libraries(cgan_cuda PRIVATE ${CMAKE_DL_LIBS})
endif()

# cuDNN: optional (only the conv path needs it). Versioned names too: PyTorch's pip copy ships
# libcudnn.so.9 without the unversioned link.
set(CGAN_HAVE_CUDNN OFF)
if(CGAN_WITH_CUDNN)
  find_path(CUDNN_INCLUDE_DIR cudnn.h
            HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS}
            PATH_SUFFIXES include)
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 libcudnn.so.8
               HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR}
               PATH_SUFFIXES lib lib64 lib/x64)
  if(CUDNN_INCLUDE_DIR AND CUDNN_LIBRARY)
    set(CGAN_HAVE_CUDNN ON)
    target_include_directories(cgan_cuda PUBLIC ${CUDNN_INCLUDE_DIR})
    target_link_libraries(cgan_cuda PUBLIC ${CUDNN_LIBRARY})
    target_compile_definitions(cgan_cuda PUBLIC CGAN_HAVE_CUDNN)
    message(STATUS "cgan_gpu: cuDNN ${CUDNN_LIBRARY} (headers ${CUDNN_INCLUDE_DIR})")
  else()
    message(STATUS "cgan_gpu: cuDNN not found (set CUDNN_ROOT); building without it")
  endif()
endif()

# NCCL (in the CUDA toolkit, or NCCL_ROOT): the CUDA backend's gradient all-reduce under mpirun
# (cuda/nccl_reduce.cpp, defines CGAN_HAVE_NCCL). Optional: without it a CUDA job under mpirun is
# refused with a one-line error; single-process runs do not need it.
option(CGAN_WITH_NCCL "Link NCCL into the CUDA backend when it is found" ON)
set(NCCL_ROOT "$ENV{NCCL_ROOT}" CACHE PATH "NCCL folder (with include/ and lib/)")
set(CGAN_HAVE_NCCL OFF)
if(CGAN_WITH_NCCL)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
               HINTS ${NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
               PATH_SUFFIXES lib lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(CGAN_HAVE_NCCL ON)
    target_include_directories(cgan_cuda PRIVATE ${NCCL_INCLUDE_DIR})
    target_link_libraries(cgan_cuda PUBLIC ${NCCL_LIBRARY})
    target_compile_definitions(cgan_cuda PUBLIC CGAN_HAVE_NCCL)
  endif()
endif()
message(STATUS "cgan_gpu: NCCL ${CGAN_HAVE_NCCL} ${NCCL_LIBRARY}")

target_link_libraries(cgan_core PUBLIC cgan_cuda)
target_compile_definitions(cgan_core PUBLIC CGAN_HAVE_CUDA)
message(STATUS "cgan_gpu: CUDA architectures ${CMAKE_CUDA_ARCHITECTURES}")

# include() shares the top-level scope: this sets the top level's CGAN_HAVE_CUDA.
set(CGAN_HAVE_CUDA ON)
