// The client half of extension.js, run under Node with stand-ins for the
// `vscode` API and vscode-languageclient (VS Code itself is not needed):
// a missing executable gives an error message naming it and the install
// command; a present one is started as `<command> lsp` over stdio.
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Module = require('node:module');
const test = require('node:test');

function load(settings) {
  const record = { errors: [], clients: [] };
  const vscode = {
    workspace: {
      getConfiguration: () => ({ get: (key) => settings[key] }),
      workspaceFolders: undefined,
      createFileSystemWatcher: () => ({}),
      onDidChangeConfiguration: () => ({ dispose() {} }),
    },
    window: { showErrorMessage: async (message) => { record.errors.push(message); return undefined; } },
    commands: { registerCommand: () => ({ dispose() {} }), executeCommand: async () => undefined },
  };
  class LanguageClient {
    constructor(id, name, server, options) {
      record.clients.push({ id, server, options });
    }
    async start() {}
    async stop() {}
  }
  const languageclient = { LanguageClient, TransportKind: { stdio: 0 } };
  const originalLoad = Module._load;
  Module._load = function (request, ...rest) {
    if (request === 'vscode') return vscode;
    if (request === 'vscode-languageclient/node') return languageclient;
    return originalLoad.call(this, request, ...rest);
  };
  try {
    delete require.cache[require.resolve('../extension.js')];
    return { extension: require('../extension.js'), record };
  } finally {
    Module._load = originalLoad;
  }
}

test('a missing executable is reported by name with the install command', async () => {
  const { extension, record } = load({ command: path.join(os.tmpdir(), 'no-such-dir', 'archdsl') });
  await extension.activate({ subscriptions: [] });
  assert.strictEqual(record.clients.length, 0);
  assert.strictEqual(record.errors.length, 1);
  assert.match(record.errors[0], /no-such-dir.archdsl. was not found/);
  assert.match(record.errors[0], /pip install 'archdsl\[lsp\]'/);
});

test('a command on PATH is started as `<command> lsp` for cnn documents', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'archdsl-ext-'));
  const name = process.platform === 'win32' ? 'fake-archdsl.cmd' : 'fake-archdsl';
  fs.writeFileSync(path.join(directory, name), '', { mode: 0o755 });
  const savedPath = process.env.PATH;
  process.env.PATH = directory + path.delimiter + savedPath;
  try {
    const { extension, record } = load({ command: 'fake-archdsl' });
    await extension.activate({ subscriptions: [] });
    assert.deepStrictEqual(record.errors, []);
    assert.strictEqual(record.clients.length, 1);
    const { id, server, options } = record.clients[0];
    assert.strictEqual(id, 'archdsl'); // so that `archdsl.trace.server` is the client's trace setting
    assert.strictEqual(server.run.command, path.join(directory, name));
    assert.deepStrictEqual(server.run.args, ['lsp']);
    assert.deepStrictEqual(options.documentSelector, [{ language: 'cnn' }]);
    await extension.deactivate();
  } finally {
    process.env.PATH = savedPath;
    fs.rmSync(directory, { recursive: true, force: true });
  }
});
