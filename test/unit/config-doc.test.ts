import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SERVICE_CONFIGS, configurationDoc } from '../../scripts/config-doc';

const docPath = join(__dirname, '..', '..', '..', 'docs', 'configuration.md');

describe('docs/configuration.md', () => {
  it('when the schemas change, then the document must be generated again (npm run config-doc)', () => {
    assert.equal(readFileSync(docPath, 'utf8'), configurationDoc(), 'docs/configuration.md differs from the schemas: run npm run config-doc');
  });

  it('when every service is counted, then at most 36 variables are read in all, each with a description', () => {
    const variables = new Set(SERVICE_CONFIGS.flatMap((c) => Object.keys(c.schema.shape as object)));
    assert.ok(variables.size <= 36, `${variables.size} variables: ${[...variables].join(', ')}`);
    for (const config of SERVICE_CONFIGS) {
      for (const [name, field] of Object.entries(config.schema.shape as Record<string, { description?: string }>)) {
        assert.ok(field.description && field.description.length > 20, `${config.name}: ${name} has no description`);
      }
    }
  });

  it('when a rule is documented, then it names both of its variables, and each is one the service reads', () => {
    for (const config of SERVICE_CONFIGS) {
      for (const rule of config.rules) {
        for (const variable of rule.variables) {
          assert.ok(rule.says.includes(variable), `"${rule.says}" names ${variable}`);
          assert.ok(variable in (config.schema.shape as object), `${config.name} reads ${variable}`);
        }
      }
    }
  });
});
