# Writes file IN as a NUL-terminated C string constant NAME into OUT (the
# PTX of the runtime's CUDA kernels, runtime/CMakeLists.txt).
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n  " bytes "${bytes}")
file(WRITE ${OUT} "/* Generated from ${IN} by runtime/cuda/embed.cmake. */\nconst char ${NAME}[] = {\n  ${bytes}0x00};\n")
