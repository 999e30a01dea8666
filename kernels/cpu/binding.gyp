{
  # scripts/build-native.mjs passes these as --name=value; the defaults let a plain `node-gyp rebuild` work too.
  'variables': {
    'sparse_napi_include%': 'node_modules/node-addon-api',
    'sparse_openblas%': 0,
    'sparse_openblas_include%': '',
    'sparse_openblas_libdir%': '',
    'conditions': [
      ['(target_arch=="x64" or target_arch=="ia32") and OS!="win"', { 'sparse_avx2%': 1 }, { 'sparse_avx2%': 0 }],
      ['target_arch=="x64" and OS!="win"', { 'sparse_avx512%': 1 }, { 'sparse_avx512%': 0 }],
    ],
  },
  'conditions': [
    # The 16-wide kernels (kernels_wide.inc), compiled twice: for AVX-512, and with only AVX2 + FMA as
    # the avx512-emu family that tests their logic on machines without AVX-512. Each is its own library
    # with its own flags; the addon picks one after the run-time CPU check (cpu_features.cc).
    ['sparse_avx512==1', {
      'targets': [{
        'target_name': 'sparse_avx512',
        'type': 'static_library',
        'sources': ['native/kernels_avx512.cc'],
        'cflags': ['-fPIC', '-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx2', '-mfma'],
        'cflags_cc': ['-fPIC', '-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx2', '-mfma'],
        'xcode_settings': { 'OTHER_CFLAGS': ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx2', '-mfma'], 'OTHER_CPLUSPLUSFLAGS': ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx2', '-mfma'] },
      }, {
        'target_name': 'sparse_avx512emu',
        'type': 'static_library',
        'sources': ['native/kernels_avx512emu.cc'],
        'cflags': ['-fPIC', '-mavx2', '-mfma'],
        'cflags_cc': ['-fPIC', '-mavx2', '-mfma'],
        'xcode_settings': { 'OTHER_CFLAGS': ['-mavx2', '-mfma'], 'OTHER_CPLUSPLUSFLAGS': ['-mavx2', '-mfma'] },
      }],
    }],
    # The AVX2/FMA micro-kernels live in their own library compiled with -mavx2 -mfma; the addon
    # itself is baseline x86-64 and picks them only after a run-time CPU check.
    ['sparse_avx2==1', {
      'targets': [{
        'target_name': 'sparse_avx2',
        'type': 'static_library',
        'sources': ['native/kernels_avx2.cc', 'native/spmm_avx2.cc', 'native/ops_avx2.cc', 'native/elementwise_avx2.cc', 'native/sparse_linear_avx2.cc', 'native/attention_avx2.cc', 'native/fused_avx2.cc'],
        'cflags': ['-fPIC', '-mavx2', '-mfma'],
        'cflags_cc': ['-fPIC', '-mavx2', '-mfma'],
        'xcode_settings': { 'OTHER_CFLAGS': ['-mavx2', '-mfma'], 'OTHER_CPLUSPLUSFLAGS': ['-mavx2', '-mfma'] },
      }],
    }],
  ],
  'targets': [
    {
      'target_name': 'sparse_cpu',
      'sources': ['native/addon.cc', 'native/cpu_features.cc', 'native/gemm.cc', 'native/ops.cc', 'native/spmm.cc', 'native/thread_pool.cc', 'native/elementwise.cc', 'native/sparse_linear.cc', 'native/attention.cc', 'native/linalg.cc', 'native/prune_select.cc', 'native/fused.cc', 'native/fused_adam.cc'],
      'include_dirs': ['<(sparse_napi_include)'],
      'defines': [
        'NAPI_VERSION=8',
        'NAPI_CPP_EXCEPTIONS',
        'NODE_ADDON_API_CPP_EXCEPTIONS_ALL',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
      ],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions'],
      'cflags_cc': ['-fexceptions'],
      'ldflags': ['-pthread'],
      'xcode_settings': {
        'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
        'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
      },
      'msvs_settings': { 'VCCLCompilerTool': { 'ExceptionHandling': 1 } },
      'conditions': [
        ['sparse_avx2==1', {
          'dependencies': ['sparse_avx2'],
          'defines': ['SPARSE_WITH_AVX2'],
        }],
        ['sparse_avx2==1 and sparse_avx512==1', {
          'dependencies': ['sparse_avx512', 'sparse_avx512emu'],
          'defines': ['SPARSE_WITH_AVX512'],
        }],
        ['sparse_openblas==1', {
          'defines': ['SPARSE_HAVE_OPENBLAS'],
          'libraries': ['-lopenblas'],
        }],
        ['sparse_openblas==1 and sparse_openblas_include!=""', {
          'include_dirs': ['<(sparse_openblas_include)'],
        }],
        ['sparse_openblas==1 and sparse_openblas_libdir!=""', {
          'libraries': ['-L<(sparse_openblas_libdir)', '-Wl,-rpath,<(sparse_openblas_libdir)'],
        }],
      ],
    },
  ],
}
