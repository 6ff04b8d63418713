/**
 * A command on a real terminal for integration tests: tmux runs it in a detached session on a
 * server socket of its own (`tmux -L <name>`), so tests never meet a person's tmux; the screen is
 * read with capture-pane and keys are typed with send-keys. The command's exit code is printed on
 * the screen as `exit=<code>`, and the pane stays for reading until close().
 */
import { execFileSync } from 'node:child_process';
import { waitFor } from './postgres';

export interface Terminal {
  /** What the pane shows now, with its scrollback. */
  screen(): string;
  /** Waits until the screen matches `re`; returns the screen. */
  waitForScreen(re: RegExp, timeoutMs?: number): Promise<string>;
  /** The exit code once the command has ended. */
  exitCode(timeoutMs?: number): Promise<number>;
  /** tmux key names: `C-c`, `Enter`, or text. */
  sendKeys(...keys: string[]): void;
  close(): void;
}

const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/**
 * Runs `argv` with exactly `env` (plus PATH and TERM) on a `width`-column terminal. bash waits for
 * the command and then prints its exit code: a command that handles Ctrl-C and exits keeps bash going.
 */
export function startTerminal(socket: string, argv: string[], env: Record<string, string>, width = 200): Terminal {
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const environment = { PATH: process.env.PATH ?? '/usr/bin:/bin', TERM: 'xterm-256color', ...env };
  const command = `env -i ${Object.entries(environment).map(([k, v]) => `${k}=${quote(v)}`).join(' ')} ${argv.map(quote).join(' ')}; echo "exit=$?"; sleep 600`;
  tmux('new-session', '-d', '-s', 'test', '-x', String(width), '-y', '40', 'bash', '-c', command);
  const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', 'test');
  return {
    screen,
    waitForScreen: (re, timeoutMs = 20_000) => waitFor(async () => {
      const text = screen();
      return re.test(text) ? text : undefined;
    }, { timeoutMs, intervalMs: 50, what: `the terminal to show ${re}` }).catch((err: Error) => {
      throw new Error(`${err.message}; it shows:\n${screen()}`);
    }),
    exitCode: async (timeoutMs = 20_000) => {
      const text = await waitFor(async () => /^exit=\d+$/m.test(screen()) ? screen() : undefined, { timeoutMs, intervalMs: 50, what: 'the command to end' });
      return Number(/^exit=(\d+)$/m.exec(text)![1]);
    },
    sendKeys: (...keys) => void tmux('send-keys', '-t', 'test', ...keys),
    close: () => {
      try {
        tmux('kill-server');
      } catch {
        // Already gone.
      }
    },
  };
}
