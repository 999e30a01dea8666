import { validateSpmmCSRArgs, toCSR, tensor } from '@sparse/tensor';
const M=4096,K=4096,N=256;
let x=11; const w=new Float32Array(M*K); for (let i=0;i<w.length;i++){ x=(Math.imul(x,1664525)+1013904223)>>>0; w[i]= x/2**32 < 0.1 ? 1 : 0; }
const a = toCSR(tensor(w,[M,K]));
const b=new Float32Array(K*N), c=new Float32Array(M*N);
const args={a,n:N,alpha:1,b,bOffset:0,ldb:N,beta:0,c,cOffset:0,ldc:N};
for (let r=0;r<8;r++){ const t=performance.now(); validateSpmmCSRArgs(args); console.log('validate ms', (performance.now()-t).toFixed(2)); }
