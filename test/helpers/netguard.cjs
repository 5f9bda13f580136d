/**
 * Preloaded into node processes by tests (NODE_OPTIONS=--require …/netguard.cjs, which every
 * child node process inherits) to prove a program makes no network traffic beyond loopback:
 * every DNS lookup of another host and every connection to a non-loopback address is refused
 * (ENOTFOUND / ECONNREFUSED, so nothing leaves the machine) and recorded, one line each, in the
 * file NETGUARD_LOG. Each process also records its start and the process ids of the children it
 * spawns, so a test can wait until all of them are gone, detached ones included (the CDK CLI
 * sends telemetry from a detached child that outlives it), before reading the record.
 *
 * It is CommonJS because --require loads it before any ES module of the program.
 */
const fs = require('node:fs');
const dns = require('node:dns');
const net = require('node:net');
const { ChildProcess } = require('node:child_process');

const log = process.env.NETGUARD_LOG;
if (log) {
  const note = (line) => fs.appendFileSync(log, `${process.pid} ${line}\n`);
  const loopback = (host) =>
    host === undefined ||
    host === null ||
    host === '' ||
    host === 'localhost' ||
    host === '::1' ||
    /^127\./.test(String(host));
  const refused = (host, code) =>
    Object.assign(new Error(`netguard: ${code} ${host} (tests allow loopback only)`), {
      code,
      hostname: host,
    });

  note(`start ${process.argv.slice(1).join(' ')}`);
  process.on('exit', () => note('exit'));
  const spawn = ChildProcess.prototype.spawn;
  ChildProcess.prototype.spawn = function guardedSpawn(...args) {
    const result = spawn.apply(this, args);
    if (this.pid !== undefined) note(`spawn ${this.pid}`);
    return result;
  };

  const originalLookup = dns.lookup;
  dns.lookup = function lookup(host, options, callback) {
    const cb = typeof options === 'function' ? options : callback;
    if (!loopback(host)) {
      note(`lookup ${host}`);
      process.nextTick(() => cb(refused(host, 'ENOTFOUND')));
      return {};
    }
    return originalLookup.call(this, host, options, callback);
  };
  const promisesLookup = dns.promises.lookup;
  dns.promises.lookup = async function lookup(host, options) {
    if (!loopback(host)) {
      note(`lookup ${host}`);
      throw refused(host, 'ENOTFOUND');
    }
    return promisesLookup.call(this, host, options);
  };
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function guardedConnect(...args) {
    const first = args[0];
    const options = Array.isArray(first) ? first[0] : first;
    const target =
      typeof options === 'object' && options !== null
        ? options
        : { port: options, host: typeof args[1] === 'string' ? args[1] : undefined };
    if (!target.path && !loopback(target.host)) {
      note(`connect ${target.host}:${target.port}`);
      process.nextTick(() => this.destroy(refused(target.host, 'ECONNREFUSED')));
      return this;
    }
    return connect.apply(this, args);
  };
}
