// The archdsl extension: .cnn syntax comes from syntaxes/cnn.tmLanguage.json
// (declared in package.json); this file starts `archdsl lsp` over stdio and
// connects it to VS Code through vscode-languageclient.
'use strict';

const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

const INSTALL_HINT = "Install it with `pip install 'archdsl[lsp]'`, or set `archdsl.command` to the archdsl executable.";

/** @type {LanguageClient | undefined} */
let client;

function serverCommand() {
  const configured = vscode.workspace.getConfiguration('archdsl').get('command');
  return typeof configured === 'string' && configured.trim() !== '' ? configured.trim() : 'archdsl';
}

// The executable is looked up the way the client will spawn it (PATH, or a
// path as given), so that a missing one is reported as such instead of as a
// server that "crashed" five times.
function findExecutable(command) {
  const path = require('path');
  const fs = require('fs');
  const isFile = (candidate) => {
    try {
      return fs.statSync(candidate).isFile();
    } catch {
      return false;
    }
  };
  const extensions = process.platform === 'win32' ? ['', '.exe', '.cmd', '.bat'] : [''];
  if (command.includes('/') || command.includes('\\')) {
    const absolute = path.resolve(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '', command);
    return extensions.map((ext) => absolute + ext).find(isFile);
  }
  for (const directory of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!directory) continue;
    const found = extensions.map((ext) => path.join(directory, command + ext)).find(isFile);
    if (found) return found;
  }
  return undefined;
}

async function start() {
  const command = serverCommand();
  const executable = findExecutable(command);
  if (executable === undefined) {
    const choice = await vscode.window.showErrorMessage(
      `archdsl: the language server executable \`${command}\` was not found. ${INSTALL_HINT}`,
      'Open settings',
    );
    if (choice === 'Open settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'archdsl.command');
    }
    return;
  }
  const server = { command: executable, args: ['lsp'], transport: TransportKind.stdio };
  client = new LanguageClient(
    'archdsl',
    'archdsl',
    { run: server, debug: server },
    {
      documentSelector: [{ language: 'cnn' }],
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher('**/*.cnn') },
    },
  );
  try {
    await client.start();
  } catch (error) {
    client = undefined;
    vscode.window.showErrorMessage(`archdsl: \`${executable} lsp\` did not start (${error.message ?? error}). ${INSTALL_HINT}`);
  }
}

async function stop() {
  if (client !== undefined) {
    const running = client;
    client = undefined;
    await running.stop();
  }
}

async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('archdsl.restartServer', async () => {
      await stop();
      await start();
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration('archdsl.command')) {
        await stop();
        await start();
      }
    }),
  );
  await start();
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
