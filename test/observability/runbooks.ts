import { readFileSync } from 'node:fs';
import { runbooksFile } from './paths';

/** Where every alert's runbook_url points: a section of docs/runbooks.md on GitHub. */
export const RUNBOOKS_URL = 'https://github.com/video-mesh/video-mesh/blob/main/docs/runbooks.md';

/** The anchors GitHub makes of docs/runbooks.md's headings: lower case, punctuation dropped, spaces to dashes. */
export function runbookAnchors(): Set<string> {
  const headings = readFileSync(runbooksFile(), 'utf8').matchAll(/^#{1,6} +(.+?) *$/gm);
  return new Set(
    [...headings].map(([, text]) =>
      (text ?? '')
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-'),
    ),
  );
}
