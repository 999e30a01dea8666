// @sparse/tensor/node: file I/O (safetensors files, atomic writes). Uses Node built-ins.
export {};
