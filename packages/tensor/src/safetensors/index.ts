// Safetensors I/O that needs no Node built-ins: parse and validate bytes, serialize, sparse parts.
// File access (lazy reads, atomic writes) lives in @sparse/tensor/node.
export {
  SAFETENSORS_BUFFER_NAME,
  SAFETENSORS_MAX_HEADER_BYTES,
  SafetensorsBuffer,
  decodeSafetensorsHeader,
  parseSafetensors,
  parseSafetensorsHeader,
  planSafetensors,
  readSafetensorsHeaderLength,
  safetensorsChunks,
  serializeSafetensors,
} from './format.js';
export type {
  SafetensorsEntry,
  SafetensorsHeader,
  SafetensorsHeaderOptions,
  SafetensorsInput,
  SafetensorsLayoutOptions,
  SafetensorsPlan,
  SafetensorsPlannedTensor,
  SafetensorsReadOptions,
} from './format.js';
export {
  SAFETENSORS_DTYPES,
  decodeSafetensorsArray,
  dtypeToSafetensors,
  isSafetensorsDType,
  safetensorsBits,
  safetensorsToDType,
} from './codec.js';
export type { SafetensorsArray, SafetensorsDType, SafetensorsWideInts } from './codec.js';
export { SAFETENSORS_SPARSE_PREFIX, sparseToTensors, tensorsToSparse } from './sparse.js';
export type { SafetensorsPartSource, SafetensorsRawTensor } from './sparse.js';
