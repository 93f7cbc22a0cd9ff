// Sends log entries through winston-loki (a maintained Loki client) and reports what
// the server answered. Used by tests/integration/log/test_shippers_loki.py.
//
//   echo '{"host": "http://127.0.0.1:8080", "basicAuth": "id:secret", "json": false,
//          "headers": {}, "labels": {"job": "api"},
//          "entries": [{"level": "warn", "message": "disk full", "labels": {"k": "v"}}]}' |
//     node push.js
//
// Prints one JSON object: {"protocol": "protobuf"|"json", "errors": ["..."]}.
'use strict'
const fs = require('fs')
const winston = require('winston')
const LokiTransport = require('winston-loki')

async function main () {
  const cfg = JSON.parse(fs.readFileSync(0, 'utf8'))
  const errors = []
  const transport = new LokiTransport({
    host: cfg.host,
    basicAuth: cfg.basicAuth,
    headers: cfg.headers || {},
    json: Boolean(cfg.json),
    labels: cfg.labels,
    batching: true,
    interval: 3600, // one batch, sent by flush() below
    replaceTimestamp: false,
    gracefulShutdown: false,
    clearOnError: true,
    format: winston.format.printf(info => info.message),
    onConnectionError: err => errors.push(String(err && err.message ? err.message : err))
  })
  const logger = winston.createLogger({ level: 'silly', transports: [transport] })
  for (const entry of cfg.entries) {
    logger.log({ level: entry.level || 'info', message: entry.message, labels: entry.labels || {} })
  }
  await new Promise(resolve => setImmediate(resolve))
  try {
    await transport.batcher.sendBatchToLoki()
  } catch (err) {
    if (!errors.length) errors.push(String(err && err.message ? err.message : err))
  }
  const protocol = transport.batcher.options.json ? 'json' : 'protobuf'
  process.stdout.write(JSON.stringify({ protocol, errors }) + '\n')
  process.exit(0)
}

main().catch(err => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n')
  process.exit(1)
})
