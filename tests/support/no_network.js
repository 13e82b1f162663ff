// Loaded into every Node process of the test session (NODE_OPTIONS=--require ...): the jsii kernel
// that runs the CDK during synthesis may not open network connections or resolve host names.
"use strict";
const net = require("net");
const dns = require("dns");
const blocked = (what) => {
  const error = new Error(`genai-stack tests: network access is forbidden during synthesis (${what})`);
  error.code = "EGENAI_OFFLINE";
  throw error;
};
net.Socket.prototype.connect = function () { blocked("net.Socket.connect"); };
net.connect = net.createConnection = function () { blocked("net.connect"); };
dns.lookup = function () { blocked("dns.lookup"); };
dns.promises.lookup = async function () { blocked("dns.promises.lookup"); };
