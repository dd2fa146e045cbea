// Starts Natter's services for one end-to-end run against the shared local stack
// (deploy/stack.sh): auth serving the built client, presence, persister, media, search and two edges, on free
// ports, isolated from everything else by a fresh NATS subject prefix, PostgreSQL database and CQL
// keyspace (as shared::testing does for the Rust tests). Binaries are the workspace's debug build.
// Their logs go to web/e2e/out/logs, at `info` or at NATTER_E2E_LOG's filter (`info,edge=debug`).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const WEB = join(ROOT, 'web');

function stackEnv() {
  const file = join(ROOT, '.natter', 'env');
  const env = {};
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) env[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
  }
  for (const k of ['NATTER_NATS_URL', 'NATTER_DATABASE_URL', 'NATTER_REDIS_URL', 'NATTER_CQL_NODES']) {
    if (process.env[k]) env[k] = process.env[k];
    if (!env[k]) throw new Error(`${k} is unknown: start the stack first (./natter up --stack)`);
  }
  return env;
}

// Ports below the kernel's ephemeral range (32768 and up), as shared/testkit's free_port: a port
// that listen(0) handed out and gave back can be taken meanwhile by one of the many outgoing
// connections the services open, and the service started on it last (notify) fails to bind.
const FIRST_PORT = 20_000;
const PORT_COUNT = 12_000;

function tryListen(port) {
  return new Promise((res) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

async function freePort() {
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const port = FIRST_PORT + Math.floor(Math.random() * PORT_COUNT);
    if (await tryListen(port)) return port;
  }
  throw new Error(`no free port in ${FIRST_PORT}..${FIRST_PORT + PORT_COUNT}`);
}

function unique(tag) {
  return `e2e_${tag}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
}

function binDir() {
  const target = process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target');
  return join(target, 'debug');
}

/**
 * The services' binaries in debug, unless NATTER_E2E_NO_BUILD is set. The whole workspace with its
 * dev-dependencies (`--examples` asks for them; there are none), as shared/testkit's
 * `BUILD_SELECTION`: the features cargo resolves are then those of `cargo test --workspace`, and
 * after it (as in `./natter test`) this builds nothing; `-p auth -p edge …` would compile every
 * workspace crate and a dozen dependencies again with other features.
 */
export function buildServices() {
  if (process.env.NATTER_E2E_NO_BUILD) return;
  execFileSync('cargo', ['build', '--locked', '--workspace', '--bins', '--examples'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
}

/** `npm run build`, unless the caller built it (NATTER_E2E_CLIENT_BUILT or NATTER_E2E_NO_BUILD). */
export function buildClient() {
  const built = process.env.NATTER_E2E_CLIENT_BUILT || process.env.NATTER_E2E_NO_BUILD;
  if (built && existsSync(join(WEB, 'dist', 'index.html'))) return;
  execFileSync('npm', ['run', 'build'], { cwd: WEB, stdio: 'inherit' });
}

function flagsOf(bin) {
  try {
    return execFileSync(bin, ['--help'], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

/** The last lines of a service's log, for an error that says why it stopped. */
function tail(file, lines = 15) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitReady(name, port, proc, log, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) {
      throw new Error(`${name} exited with ${proc.exitCode}; the end of ${log}:\n${tail(log)}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${name} was not ready within ${timeoutMs / 1000} s; the end of ${log}:\n${tail(log)}`);
}

export class Services {
  /**
   * `edgeEnv` adds settings for one edge (`{ edge2: { NATTER_SEND_RATE: '5/5s' } }`), e.g. the
   * production send rate where a scenario needs it. `mediaArgs` adds flags to media (the test-only
   * `--unfurl-allow-address` of a fixture site, for link previews). `storage: 's3'` keeps media's
   * files in the stack's SeaweedFS (under this run's prefix), where browsers PUT uploads
   * straight into the store, as production does.
   */
  constructor({ edgeEnv = {}, mediaArgs = [], storage = 'local' } = {}) {
    this.edgeEnv = edgeEnv;
    this.mediaArgs = mediaArgs;
    this.storage = storage;
    this.procs = new Map();
    // However the run ends (a failed assertion, Ctrl-C), no service outlives it.
    const killAll = () => this.procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL'));
    process.once('exit', killAll);
    for (const signal of ['SIGINT', 'SIGTERM']) {
      process.once(signal, () => {
        killAll();
        process.exit(130);
      });
    }
    this.env = stackEnv();
    this.prefix = unique('p');
    this.keyspace = unique('ks');
    this.database = unique('db');
    this.outDir = join(WEB, 'e2e', 'out');
    mkdirSync(join(this.outDir, 'logs'), { recursive: true });
  }

  /** Starts every service; when one fails to start, stops those already running and throws. */
  async start() {
    try {
      return await this.startAll();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async startAll() {
    const bin = binDir();
    const dbUrl = new URL(this.env.NATTER_DATABASE_URL);
    execFileSync('psql', [this.env.NATTER_DATABASE_URL, '-qc', `CREATE DATABASE ${this.database}`]);
    dbUrl.pathname = `/${this.database}`;
    const key = join(this.outDir, `${this.prefix}.pem`);
    execFileSync(join(bin, 'auth'), ['keygen', key], { stdio: 'ignore' });

    this.ports = {
      auth: await freePort(),
      presence: await freePort(),
      persister: await freePort(),
      edge1: await freePort(),
      edge2: await freePort(),
      media: await freePort(),
      search: await freePort(),
      notify: await freePort(),
    };
    this.origin = `http://127.0.0.1:${this.ports.auth}`;
    this.mediaUrl = `http://127.0.0.1:${this.ports.media}`;
    this.notifyUrl = `http://127.0.0.1:${this.ports.notify}`;
    // Media's URL-signing secret, which the edges share to sign messages' file links.
    const mediaSecret = randomBytes(32).toString('hex');
    const mediaDir = join(this.outDir, 'media', this.prefix);
    mkdirSync(mediaDir, { recursive: true });
    const common = {
      NATTER_NATS_URL: this.env.NATTER_NATS_URL,
      NATTER_NATS_PREFIX: this.prefix,
      NATTER_LOG_FORMAT: 'json',
      NATTER_LOG: process.env.NATTER_E2E_LOG ?? 'info',
      // This run's chat stream is thrown away with its prefix; let the shared NATS forget it soon.
      NATTER_STREAM_MAX_AGE: '1h',
      // Each service's /metrics listener on a free port, clear of `./natter up`'s.
      NATTER_AUTH_METRICS_ADDR: '127.0.0.1:0',
      NATTER_EDGE_METRICS_ADDR: '127.0.0.1:0',
      NATTER_PRESENCE_METRICS_ADDR: '127.0.0.1:0',
      NATTER_PERSISTER_METRICS_ADDR: '127.0.0.1:0',
      NATTER_MEDIA_METRICS_ADDR: '127.0.0.1:0',
      NATTER_SEARCH_METRICS_ADDR: '127.0.0.1:0',
      NATTER_NOTIFY_METRICS_ADDR: '127.0.0.1:0',
      // Where browsers reach notify (the inbox, the VAPID key): in the page's connect-src.
      NATTER_NOTIFY_URL: this.notifyUrl,
      // Where browsers reach media: auth's page loads images from it, edges sign links to it.
      NATTER_MEDIA_URL: this.mediaUrl,
    };
    // The stack's S3 store, for media on S3 (`./natter up --stack` writes it to .natter/env).
    const s3 =
      this.storage === 's3'
        ? Object.fromEntries(Object.entries(this.env).filter(([k]) => k.startsWith('NATTER_S3_')))
        : {};
    if (this.storage === 's3' && !s3.NATTER_S3_ENDPOINT)
      throw new Error('NATTER_S3_ENDPOINT is unknown: start the stack first (./natter up --stack)');
    const cql = {
      NATTER_CQL_NODES: this.env.NATTER_CQL_NODES,
      NATTER_CQL_KEYSPACE: this.keyspace,
    };
    this.specs = {
      auth: {
        bin: 'auth',
        args: [
          '--http-addr',
          `127.0.0.1:${this.ports.auth}`,
          '--signing-key',
          key,
          '--worker-id',
          '0',
          '--web-dir',
          join(WEB, 'dist'),
          // The page's Content-Security-Policy lets it reach these edges (and itself) only.
          '--edge-origins',
          [this.ports.edge1, this.ports.edge2].map((port) => `http://127.0.0.1:${port}`).join(','),
          ...(this.storage === 's3' ? ['--upload-origins', s3.NATTER_S3_ENDPOINT] : []),
        ],
        env: {
          ...common,
          NATTER_DATABASE_URL: dbUrl.toString(),
          NATTER_REDIS_URL: this.env.NATTER_REDIS_URL,
          // The stack's media server (LiveKit), for voice.
          ...Object.fromEntries(
            ['NATTER_LIVEKIT_URL', 'NATTER_LIVEKIT_API_KEY', 'NATTER_LIVEKIT_API_SECRET']
              .filter((k) => this.env[k])
              .map((k) => [k, this.env[k]]),
          ),
          // Every test signs up from one address.
          NATTER_SIGN_UP_RATE: '1000/1m',
          NATTER_SIGN_IN_RATE: '1000/1m',
        },
      },
      presence: {
        bin: 'presence',
        args: ['--http-addr', `127.0.0.1:${this.ports.presence}`],
        env: { ...common, NATTER_REDIS_URL: this.env.NATTER_REDIS_URL },
      },
      media: {
        bin: 'media',
        args: [
          '--http-addr',
          `127.0.0.1:${this.ports.media}`,
          '--public-url',
          this.mediaUrl,
          '--auth-url',
          this.origin,
          ...(this.storage === 's3'
            ? ['--storage', 's3', '--storage-prefix', this.prefix]
            : ['--storage', 'local', '--storage-dir', mediaDir]),
          ...this.mediaArgs,
        ],
        env: { ...common, ...s3, NATTER_MEDIA_URL_SIGNING_SECRET: mediaSecret },
      },
      notify: {
        bin: 'notify',
        args: [
          '--http-addr',
          `127.0.0.1:${this.ports.notify}`,
          '--auth-url',
          this.origin,
          '--allowed-origins',
          this.origin,
          '--vapid-key',
          join(this.outDir, `${this.prefix}-vapid.pem`),
        ],
        env: { ...common, ...cql },
      },
      persister: {
        bin: 'persister',
        args: ['--http-addr', `127.0.0.1:${this.ports.persister}`],
        env: { ...common, ...cql },
      },
      search: {
        bin: 'search',
        args: [
          '--http-addr',
          `127.0.0.1:${this.ports.search}`,
          '--index-dir',
          join(this.outDir, 'search', this.prefix),
          '--commit-interval',
          '200ms',
        ],
        env: { ...common, ...cql },
      },
    };
    for (const [name, worker] of [
      ['edge1', 1],
      ['edge2', 2],
    ]) {
      const port = this.ports[name];
      this.specs[name] = {
        bin: 'edge',
        args: [
          '--http-addr',
          `127.0.0.1:${port}`,
          '--public-url',
          `ws://127.0.0.1:${port}/gateway`,
          '--worker-id',
          String(worker),
          '--auth-url',
          this.origin,
          '--allowed-origins',
          this.origin,
        ],
        // Edges that read history take the CQL settings; older ones ignore the variables.
        env: {
          ...common,
          ...cql,
          NATTER_REDIS_URL: this.env.NATTER_REDIS_URL,
          NATTER_DATABASE_URL: dbUrl.toString(),
          // The long-channel scenario posts 10,000 messages as one person, through one socket.
          NATTER_SEND_RATE: '100000/1s',
          NATTER_FRAMES_PER_MINUTE: '1000000',
          NATTER_MEDIA_URL_SIGNING_SECRET: mediaSecret,
          ...this.edgeEnv[name],
        },
      };
    }
    this.edgeHelp = flagsOf(join(bin, 'edge'));
    // auth first: the edges fetch its signing keys.
    await this.run('auth');
    await Promise.all(['presence', 'persister', 'edge1', 'edge2', 'media', 'search'].map((n) => this.run(n)));
    // After the persister: it applies the CQL schema notify's inbox needs (notify applies it too).
    await this.run('notify');
    return this;
  }

  async run(name) {
    const spec = this.specs[name];
    const logFile = join(this.outDir, 'logs', `${name}.log`);
    const log = openSync(logFile, 'a');
    // Only the variables a service needs: nothing from the caller's environment leaks in.
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...spec.env };
    const proc = spawn(join(binDir(), spec.bin), spec.args, { env, stdio: ['ignore', log, log] });
    // A service never keeps the test file's process alive: once its tests are over it exits, and
    // the 'exit' handler kills what is left (a start that failed half-way leaves no `after` to).
    proc.unref();
    this.procs.set(name, proc);
    await waitReady(name, this.ports[name], proc, logFile);
  }

  edgeUrl(name) {
    return `ws://127.0.0.1:${this.ports[name]}/gateway`;
  }

  /** Kills a service as abruptly as a crash. */
  kill(name, signal = 'SIGKILL') {
    const proc = this.procs.get(name);
    if (proc && proc.exitCode === null) proc.kill(signal);
    this.procs.delete(name);
  }

  async stop() {
    const all = [...this.procs.entries()];
    await Promise.all(
      all.map(
        ([, proc]) =>
          new Promise((res) => {
            if (proc.exitCode !== null) return res();
            const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
            proc.on('exit', () => {
              clearTimeout(t);
              res();
            });
            proc.kill('SIGTERM');
          }),
      ),
    );
    this.procs.clear();
    try {
      execFileSync('psql', [
        this.env.NATTER_DATABASE_URL,
        '-qc',
        `DROP DATABASE IF EXISTS ${this.database} WITH (FORCE)`,
      ]);
    } catch {
      // left for the stack's next reset
    }
  }
}
