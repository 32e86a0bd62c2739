// A Node.js handler for AWS's aws-lambda-ric: does what its records ask (see ../README.md).
"use strict";
const fs = require("fs");

if (process.env.ESM_SCENARIO_INIT_FAIL) {
  throw new Error("init failed on purpose (ESM_SCENARIO_INIT_FAIL is set)");
}

class ScenarioError extends Error {
  constructor(message) {
    super(message);
    this.name = "ScenarioError";
  }
}

function items(event) {
  const found = [];
  for (const [key, records] of Object.entries(event.records || {})) {
    for (const record of records) {
      const value = Buffer.from(record.value || "", "base64").toString();
      found.push({ id: { partition: key, offset: record.offset }, value });
    }
  }
  for (const record of event.Records || []) {
    const value = Buffer.from(record.kinesis.data, "base64").toString();
    found.push({ id: record.kinesis.sequenceNumber, value });
  }
  return found;
}

exports.handler = async (event) => {
  fs.appendFileSync(process.env.ESM_RECORDER_FILE, JSON.stringify(event) + "\n");
  const found = items(event);
  const values = new Set(found.map((item) => item.value));
  if (values.has("fail")) throw new ScenarioError("a record asked to fail");
  if (values.has("sleep")) await new Promise((resolve) => setTimeout(resolve, 30000));
  if (values.has("crash")) process.exit(3);
  if (values.has("oom")) {
    const hog = [];
    for (let i = 0; i < 40; i++) hog.push(Buffer.alloc(10 * 1024 * 1024, 1));
    return hog.length;
  }
  const failed = found.filter((item) => item.value === "partial");
  return { batchItemFailures: failed.map((item) => ({ itemIdentifier: item.id })) };
};
