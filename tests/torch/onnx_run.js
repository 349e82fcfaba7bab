#!/usr/bin/env node
// Runs an exported ONNX generator with onnxruntime-node's CPU execution provider (tests/torch/test_export.py).
//
//   node tests/torch/onnx_run.js MODEL.onnx INPUTS.json OUT.bin
//
// INPUTS.json: {"noise": {"dtype": "float32", "shape": [B, N], "file": "noise.bin"}, "label": {"dtype":
// "int64", ...}}: raw little-endian files (relative to INPUTS.json). Writes the first output ("images") as
// raw float32 to OUT.bin and prints one JSON line {"name", "dims", "type"}. onnxruntime-node is taken from
// tools/node/node_modules (tools/setup.sh --tests installs it), or $CGAN_NODE_MODULES. Any failure: one
// line on stderr naming it, exit 1.
'use strict';
const fs = require('fs');
const path = require('path');

function fail(msg) {
  process.stderr.write(`onnx_run.js: ${msg}\n`);
  process.exit(1);
}

async function main() {
  const [model, inputsJson, outBin] = process.argv.slice(2);
  if (!model || !inputsJson || !outBin) fail('usage: onnx_run.js MODEL.onnx INPUTS.json OUT.bin');
  const modules = process.env.CGAN_NODE_MODULES || path.join(__dirname, '..', '..', 'tools', 'node', 'node_modules');
  let ort;
  try {
    ort = require(require.resolve('onnxruntime-node', { paths: [modules] }));
  } catch (e) {
    fail(`cannot load onnxruntime-node from ${modules} (run tools/setup.sh --tests): ${String(e.message).split('\n')[0]}`);
  }
  const spec = JSON.parse(fs.readFileSync(inputsJson, 'utf8'));
  const feeds = {};
  for (const [name, t] of Object.entries(spec)) {
    const buf = fs.readFileSync(path.resolve(path.dirname(inputsJson), t.file));
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const data = t.dtype === 'float32' ? new Float32Array(ab) : t.dtype === 'int64' ? new BigInt64Array(ab) : null;
    if (!data) fail(`input ${name}: unsupported dtype ${t.dtype}`);
    feeds[name] = new ort.Tensor(t.dtype, data, t.shape);
  }
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  const results = await session.run(feeds);
  const name = session.outputNames[0];
  const out = results[name];
  if (out.type !== 'float32') fail(`output ${name} has type ${out.type}, not float32`);
  fs.writeFileSync(outBin, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
  process.stdout.write(JSON.stringify({ name, dims: out.dims, type: out.type }) + '\n');
}

main().catch((e) => fail(String(e && e.message ? e.message : e).split('\n')[0]));
