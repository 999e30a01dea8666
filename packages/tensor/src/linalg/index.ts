// Dense linear algebra on small and medium matrices (float64 inside): QR, Jacobi SVD, randomized truncated SVD.
export { qr } from './qr.js';
export type { QRResult } from './qr.js';
export { lowRankApproximation, svd, truncatedSVD } from './svd.js';
export type { SVDResult, SVDOptions, TruncatedSVDOptions } from './svd.js';
export type { LinalgDType } from './matrix.js';
export { cholesky, choleskyInverse, triangularInverse, type CholeskyOptions } from './cholesky.js';
