#!/usr/bin/env node
// Template differences with the CDK's own diff engine (@aws-cdk/cloudformation-diff), for `genai-stack diff`.
//
// Usage: node template_diff.js JOB.json
//   JOB = {"search_paths": [dir, ...], "columns": 120,
//          "pairs": [{"key": "profile/Stack", "old": "base.template.json" | null, "new": "head.template.json" | null}]}
// A missing side (a stack that was added or removed) is compared with an empty template.
// Prints one JSON document on stdout: {"engine": version, "stacks": [{key, difference_count, empty,
// permissions_broadened, text, resources: [{logical_id, old_type, new_type, impact, addition, removal,
// path, replaced_properties: [{name, impact}]}]}]}. Exit status 0, or 3 when the engine cannot be loaded.
'use strict';

// No colours in the rendered text (chalk reads this when it is first required).
process.env.FORCE_COLOR = '0';

const fs = require('fs');
const path = require('path');
const { Writable } = require('stream');

const PACKAGE = '@aws-cdk/cloudformation-diff';

function loadEngine(searchPaths) {
  try {
    const entry = require.resolve(PACKAGE, { paths: searchPaths });
    let version = 'unknown';
    try {
      const manifest = require.resolve(`${PACKAGE}/package.json`, { paths: searchPaths });
      version = JSON.parse(fs.readFileSync(manifest, 'utf8')).version;
    } catch (_error) {
      // The package may not export its package.json; the version is informative only.
    }
    return { engine: require(entry), version };
  } catch (error) {
    process.stderr.write(
      `cannot load ${PACKAGE} from ${searchPaths.join(', ')} (run \`npm ci\` in the repository): ${error.message}\n`,
    );
    process.exit(3);
  }
}

function readTemplate(file) {
  return file ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
}

function render(engine, diff, columns) {
  const chunks = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  stream.columns = columns;
  engine.formatDifferences(stream, diff);
  return chunks.join('');
}

const REPLACING = new Set(['WILL_REPLACE', 'MAY_REPLACE']);

function resourceChanges(diff) {
  const changes = [];
  diff.resources.forEachDifference((logicalId, change) => {
    const resource = change.newValue || change.oldValue || {};
    const replacedProperties = [];
    for (const [name, property] of Object.entries(change.propertyUpdates)) {
      if (REPLACING.has(property.changeImpact)) {
        replacedProperties.push({ name, impact: property.changeImpact });
      }
    }
    changes.push({
      logical_id: logicalId,
      old_type: change.oldResourceType || null,
      new_type: change.newResourceType || null,
      impact: change.changeImpact,
      addition: change.isAddition,
      removal: change.isRemoval,
      path: (resource.Metadata && resource.Metadata['aws:cdk:path']) || null,
      replaced_properties: replacedProperties,
    });
  });
  return changes;
}

function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const searchPaths = (job.search_paths || []).map((dir) => path.resolve(dir));
  const { engine, version } = loadEngine(searchPaths);
  const stacks = job.pairs.map((pair) => {
    const diff = engine.fullDiff(readTemplate(pair.old), readTemplate(pair.new));
    return {
      key: pair.key,
      difference_count: diff.differenceCount,
      empty: diff.isEmpty,
      permissions_broadened: diff.permissionsBroadened,
      text: diff.isEmpty ? '' : render(engine, diff, job.columns || 120),
      resources: resourceChanges(diff),
    };
  });
  process.stdout.write(JSON.stringify({ engine: version, stacks }));
}

main();
