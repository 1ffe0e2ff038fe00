// Parses every YAML document on stdin (or in the files named) with the `yaml` package and
// prints them as one JSON array: the tests read YAML the way kubectl and Kubernetes would.
import fs from 'node:fs';
import { parseAllDocuments } from 'yaml';

const inputs = process.argv.length > 2 ? process.argv.slice(2).map((f) => fs.readFileSync(f, 'utf8')) : [fs.readFileSync(0, 'utf8')];
const docs = [];
for (const text of inputs) {
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(doc.errors.map(String).join('; '));
    const value = doc.toJS();
    if (value !== null) docs.push(value);
  }
}
process.stdout.write(JSON.stringify(docs));
