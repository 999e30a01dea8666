// Dense linear algebra on small and medium matrices (float64 inside): QR, Jacobi SVD, randomized truncated SVD,
// the full symmetric eigendecomposition (Householder tridiagonalization + implicit QL) and Cholesky.
export { qr } from './qr.js';
export type { QRResult } from './qr.js';
export { lowRankApproximation, svd, truncatedSVD } from './svd.js';
export type { SVDResult, SVDOptions, TruncatedSVDOptions } from './svd.js';
export { symmetricEigen } from './symmetric-eigen.js';
export type { SymmetricEigenOptions, SymmetricEigenResult } from './symmetric-eigen.js';
export type { LinalgDType } from './matrix.js';
export { cholesky, choleskyInverse, triangularInverse, type CholeskyOptions } from './cholesky.js';
