// Finding PyTorch for the benches that compare against it (train, pruners): Debian's python3-torch with
// libopenblas0-pthread (without the latter it falls back to a reference BLAS at a few GFLOP/s),
// installed when missing unless told not to. Its commands run without OPENBLAS_CORETYPE /
// OPENBLAS_L2_SIZE, so OpenBLAS picks its own kernel for the CPU.
import { spawnSync } from 'node:child_process';

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;

function debPackageInstalled(name) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/** Runs apt-get non-interactively (through `sudo -n` when not root); returns null or why it failed. */
function aptGet(args, timeoutSec) {
  const root = process.getuid?.() === 0;
  if (!root && !has('sudo')) return 'not root and no sudo';
  const cmd = root ? 'apt-get' : 'sudo';
  const argv = root ? args : ['-n', 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args];
  const r = spawnSync(cmd, argv, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, encoding: 'utf8', timeout: timeoutSec * 1000, maxBuffer: 64 << 20 });
  if (r.error) return `${cmd} ${argv.join(' ')}: ${r.error.code === 'ETIMEDOUT' ? `timed out after ${timeoutSec} s` : r.error.message}`;
  if (r.status !== 0) return `${cmd} ${argv.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`;
  return null;
}

/**
 * `torchEnv`: the environment PyTorch children run in; `setUpTorch()`: { py } (a python that imports
 * torch), { py, warn }, or { skip: why }.
 */
export function torchSetupFor({ log, noInstall }) {
  const torchEnv = { ...process.env };
  delete torchEnv.OPENBLAS_CORETYPE;
  delete torchEnv.OPENBLAS_L2_SIZE;
  // With more runnable threads than cores (a shared machine), OpenMP's default spin-waiting makes
  // PyTorch's 2-thread regions several times slower; passive waiting keeps its figure at its fair
  // share of the CPU. It only helps PyTorch, so a win against it is not an artifact of the load.
  torchEnv.OMP_WAIT_POLICY ??= 'PASSIVE';

  /** A python that imports torch: the one on PATH (a venv, pyenv) first, then Debian's. */
  function findTorchPython() {
    for (const py of ['python3', '/usr/bin/python3']) {
      const r = spawnSync(py, ['-c', 'import torch'], { env: torchEnv, encoding: 'utf8', timeout: 120_000 });
      if (r.status === 0) return py;
    }
    return null;
  }

  function setUpTorch() {
    const blasMissing = has('dpkg-query') && !debPackageInstalled('libopenblas0-pthread');
    let py = findTorchPython();
    if (py && !blasMissing) return { py };
    const missing = [py ? null : 'python3-torch', blasMissing ? 'libopenblas0-pthread' : null].filter(Boolean).join(', ');
    if (noInstall) return py ? { py, warn: `${missing} missing; not installed (SPARSE_BENCH_NO_INSTALL=1)` } : { skip: `PyTorch not importable and SPARSE_BENCH_NO_INSTALL=1` };
    if (!has('apt-get')) return py ? { py, warn: `${missing} missing and no apt-get` } : { skip: 'PyTorch not importable and no apt-get to install python3-torch' };
    log(`installing ${missing} from Debian (apt-get update, then apt-get install python3-torch libopenblas0-pthread; may take several minutes)`);
    const why = aptGet(['update'], 300) ?? aptGet(['install', '-y', '--no-install-recommends', 'python3-torch', 'libopenblas0-pthread'], 1200);
    py = findTorchPython();
    if (why) return py ? { py, warn: `installing ${missing} failed: ${why}` } : { skip: `installing python3-torch failed: ${why}` };
    if (!py) return { skip: 'python3-torch installed but neither python3 nor /usr/bin/python3 imports torch' };
    log(`installed; PyTorch runs under ${py}`);
    return { py };
  }

  return { torchEnv, setUpTorch };
}
