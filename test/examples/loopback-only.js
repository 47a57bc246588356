/**
 * Preloaded (`node --require`) into the example processes under test: any connection to a host
 * that is not loopback throws, so "runs with no network" is checked, not assumed.
 */
const net = require('node:net');
const dns = require('node:dns');

const LOOPBACK = /^(?:127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/;

function check(host) {
  if (host !== undefined && host !== null && !LOOPBACK.test(String(host))) {
    throw new Error(`network access to ${host} attempted (the examples must run offline)`);
  }
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function patchedConnect(...args) {
  const first = args[0];
  if (first && typeof first === 'object' && !Array.isArray(first)) {
    if (first.path === undefined) check(first.host ?? 'localhost');
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    check(typeof args[1] === 'string' ? args[1] : 'localhost');
  }
  return connect.apply(this, args);
};

const lookup = dns.lookup;
dns.lookup = function patchedLookup(hostname, ...rest) {
  check(hostname);
  return lookup.call(this, hostname, ...rest);
};
