/**
 * Agent tokens kept in a file (a Kubernetes Secret named by spec.gateway.tokensSecret, mounted by
 * the operator): a YAML list of {name, token, dns}. Read again whenever the file changes, so a
 * rotated Secret applies to the next connection; an invalid file is reported and ignored.
 */
import { readFileSync, statSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import type { Logger } from 'pino';
import { parse } from 'yaml';
import { checker } from '../../common/config/check.js';
import { AgentToken } from '../../common/config/schema.js';

const TokenList = Type.Array(AgentToken);
const isTokenList = checker(TokenList);

export class TokenFile {
  private cached: { mtimeMs: number; size: number; tokens: Static<typeof TokenList> } | undefined;

  constructor(
    readonly path: string,
    private readonly log: Logger,
  ) {}

  tokens(): Static<typeof TokenList> {
    let stat;
    try {
      stat = statSync(this.path);
    } catch (err) {
      this.log.error({ file: this.path, err: (err as Error).message }, 'agent token file unreadable');
      return [];
    }
    if (this.cached && this.cached.mtimeMs === stat.mtimeMs && this.cached.size === stat.size) return this.cached.tokens;
    let tokens: Static<typeof TokenList> = [];
    try {
      const value: unknown = parse(readFileSync(this.path, 'utf8'));
      if (isTokenList(value)) tokens = value;
      else this.log.error({ file: this.path, problem: isTokenList.problem() }, 'agent token file invalid; its tokens are not accepted');
    } catch (err) {
      this.log.error({ file: this.path, err: (err as Error).message }, 'agent token file is not YAML; its tokens are not accepted');
    }
    this.cached = { mtimeMs: stat.mtimeMs, size: stat.size, tokens };
    return tokens;
  }
}
