#!/usr/bin/env node
// check_onnx: runs exported ONNX models with ONNX Runtime (onnxruntime-node) and compares their
// logits with LibTorch's, for tests/cli/export_onnx.sh.
//   node check_onnx.js [--per-sample] [--tolerance T] DIR...
// Each DIR holds model.onnx, input.npy (N, C, H, W float32) and expected.npy (N, classes float32),
// as tests/helpers/export_sample writes them. The model must have one input "input" and one
// output "logits"; every |logit - expected| must be at most T x max(1, max |expected|) [1e-4].
// --per-sample runs the N inputs one at a time (a model whose batch is fixed at 1).
// Prints one line per DIR with its maximal error; exit 0 when all match, 1 when one does not,
// 2 on misuse, 3 when onnxruntime-node cannot be loaded. The runtime is looked up in
// $NAS_ONNXRUNTIME_DIR, then in .deps/node of the source tree (scripts/install-onnxruntime).
'use strict';
const fs = require('fs');
const path = require('path');

function loadRuntime() {
  const roots = [process.env.NAS_ONNXRUNTIME_DIR, path.join(__dirname, '..', '..', '.deps', 'node')]
    .filter(Boolean).map((d) => path.join(d, 'node_modules'));
  try {
    return require(require.resolve('onnxruntime-node', { paths: roots }));
  } catch (e) {
    console.error(`check_onnx: cannot load onnxruntime-node (run scripts/install-onnxruntime): ${e.message}`);
    process.exit(3);
  }
}

// NPY versions 1 to 3, little-endian float32, C order: { shape, data }.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY')
    throw new Error(`'${file}' is not an NPY file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']*)'/.exec(header);
  const order = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || descr[1] !== '<f4') throw new Error(`'${file}': dtype is not little-endian float32`);
  if (!order || order[1] !== 'False') throw new Error(`'${file}': not in C order`);
  if (!shape) throw new Error(`'${file}': no shape in the header`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (buf.length !== offset + 4 * count)
    throw new Error(`'${file}': ${buf.length - offset} data bytes for shape (${dims})`);
  const data = new Float32Array(count);
  for (let i = 0; i < count; ++i) data[i] = buf.readFloatLE(offset + 4 * i);
  return { shape: dims, data };
}

async function logitsOf(ort, session, x, perSample) {
  const batches = perSample ? x.shape[0] : 1;
  const rows = perSample ? 1 : x.shape[0];
  const per = x.data.length / x.shape[0];
  const parts = [];
  let outShape = null;
  for (let b = 0; b < batches; ++b) {
    const slice = x.data.subarray(b * rows * per, (b + 1) * rows * per);
    const feed = { input: new ort.Tensor('float32', slice, [rows, ...x.shape.slice(1)]) };
    const y = (await session.run(feed)).logits;
    if (y.type !== 'float32') throw new Error(`logits of type ${y.type}`);
    outShape = [x.shape[0], ...y.dims.slice(1)];
    parts.push(y.data);
  }
  const data = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (data.set(p, at), at + p.length), 0);
  return { shape: outShape, data };
}

async function check(ort, dir, tolerance, perSample) {
  const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'));
  if (session.inputNames.join() !== 'input' || session.outputNames.join() !== 'logits')
    throw new Error(`inputs [${session.inputNames}] and outputs [${session.outputNames}], expected [input] and [logits]`);
  const x = readNpy(path.join(dir, 'input.npy'));
  const expected = readNpy(path.join(dir, 'expected.npy'));
  const y = await logitsOf(ort, session, x, perSample);
  if (y.shape.join() !== expected.shape.join())
    throw new Error(`logits of shape [${y.shape}], expected [${expected.shape}]`);
  let err = 0, scale = 1;
  for (let i = 0; i < y.data.length; ++i) {
    const d = Math.abs(y.data[i] - expected.data[i]);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
    scale = Math.max(scale, Math.abs(expected.data[i]));
  }
  return { err, scale, ok: err <= tolerance * scale };
}

async function main(argv) {
  let tolerance = 1e-4, perSample = false;
  const dirs = [];
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--per-sample') perSample = true;
    else if (argv[i] === '--tolerance' && i + 1 < argv.length) tolerance = Number(argv[++i]);
    else if (argv[i].startsWith('--')) { console.error(`check_onnx: unknown option '${argv[i]}'`); return 2; }
    else dirs.push(argv[i]);
  }
  if (dirs.length === 0 || !(tolerance > 0)) {
    console.error('usage: check_onnx.js [--per-sample] [--tolerance T] DIR...');
    return 2;
  }
  const ort = loadRuntime();
  let failed = 0, worst = 0;
  for (const dir of dirs) {
    try {
      const r = await check(ort, dir, tolerance, perSample);
      worst = Math.max(worst, r.err);
      console.log(`${dir}\tmax_abs_error ${r.err.toExponential(3)}\tlogit_scale ${r.scale.toFixed(3)}\t${r.ok ? 'ok' : 'MISMATCH'}`);
      if (!r.ok) ++failed;
    } catch (e) {
      console.log(`${dir}\tERROR ${e.message}`);
      ++failed;
    }
  }
  console.log(`check_onnx: ${dirs.length - failed} of ${dirs.length} models match; max_abs_error ${worst.toExponential(3)}`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then((rc) => process.exit(rc), (e) => { console.error(`check_onnx: ${e.message}`); process.exit(1); });
