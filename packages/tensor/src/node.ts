// @sparse/tensor/node: file I/O (safetensors files, atomic writes). Uses Node built-ins.
export { atomicTempPath, atomicWriteFile } from './node/atomic.js';
export type { AtomicWriteData, AtomicWriteOptions } from './node/atomic.js';
export { SafetensorsFileReader, openSafetensors, readSafetensorsFile, writeSafetensorsFile } from './safetensors/file.js';
export type { SafetensorsOpenOptions, SafetensorsWriteOptions } from './safetensors/file.js';
