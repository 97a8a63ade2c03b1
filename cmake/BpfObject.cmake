# bpf_skeleton(NAME SRC): compiles SRC with clang -target bpf (CO-RE against a
# vmlinux.h generated from the running kernel's BTF) and generates NAME.skel.h
# with bpftool. Creates an INTERFACE target NAME_skel that carries the header.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(NM_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH "BTF used to generate vmlinux.h")
set(NM_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf-gen)
file(MAKE_DIRECTORY ${NM_BPF_GEN_DIR})

# Call from the directory that builds the skeletons: custom-command outputs
# are only visible to targets of the same directory.
function(bpf_vmlinux_header)
  add_custom_command(
    OUTPUT ${NM_BPF_GEN_DIR}/vmlinux.h
    COMMAND ${BPFTOOL} btf dump file ${NM_VMLINUX_BTF} format c > ${NM_BPF_GEN_DIR}/vmlinux.h
    COMMENT "Generating vmlinux.h from ${NM_VMLINUX_BTF}")
endfunction()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64")
  set(NM_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
  set(NM_BPF_ARCH arm64)
else()
  set(NM_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(bpf_skeleton name src)
  set(obj ${NM_BPF_GEN_DIR}/${name}.bpf.o)
  set(skel ${NM_BPF_GEN_DIR}/${name}.skel.h)
  file(GLOB_RECURSE bpf_headers CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/bpf/lib/*.h ${PROJECT_SOURCE_DIR}/bpf/include/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${NM_BPF_ARCH}
            -Wall -Wextra -Werror -Wno-unused-parameter
            -I${NM_BPF_GEN_DIR} -I${PROJECT_SOURCE_DIR}/bpf/include -I${PROJECT_SOURCE_DIR}/bpf
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${src} -o ${obj}.tmp
    COMMAND ${BPFTOOL} gen object ${obj} ${obj}.tmp
    DEPENDS ${src} ${bpf_headers} ${NM_BPF_GEN_DIR}/vmlinux.h
    COMMENT "Compiling BPF object ${name}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "Generating BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${NM_BPF_GEN_DIR} ${PROJECT_SOURCE_DIR}/bpf/include)
endfunction()
