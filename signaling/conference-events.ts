/**
 * The notifier of the RFC 4575 conference event package: a plain SIP phone SUBSCRIBEs to a
 * conference (by ConnID, or by a DN whose current conference it follows) and is sent a NOTIFY
 * with the conference-info document whenever the call model says the conference changed.
 */
import type { ConferenceMember, ModelOutput } from './model/index.js';
import type { Dialog, ServerRequest } from './sip/index.js';
import { uriUser } from './sip/index.js';
import { CONFERENCE_INFO_CONTENT_TYPE, conferenceInfoXml, type ConferenceInfo } from './conference-info.js';

/** The model's picture of one conference: its full member list, or that it is gone. */
export type ConferenceState = Extract<ModelOutput, { kind: 'conference.state' }>;

interface Subscription {
  dialog: Dialog;
  /** A ConnID, or a DN whose current conference is followed. */
  key: string;
  expiresAt: number;
}

export interface ConferenceEventNotifierOptions {
  /** Our site, the host part of the conference and member URIs. */
  location: () => string;
}

export class ConferenceEventNotifier {
  private readonly subscriptions = new Set<Subscription>();
  private readonly conferences = new Map<string, ConferenceState>();

  constructor(private readonly o: ConferenceEventNotifierOptions) {}

  /** An out-of-dialog SUBSCRIBE: accepted for the conference package, answered by a first NOTIFY. */
  onSubscribe(req: ServerRequest): void {
    const event = (req.message.get('event') ?? '').split(';')[0]?.trim().toLowerCase();
    if (event !== 'conference') {
      req.respond(489, { reason: 'Only the conference event package is supported' });
      return;
    }
    const user = uriUser(req.message.requestUri);
    if (!user) {
      req.respond(404, { reason: 'No conference in the Request-URI' });
      return;
    }
    const expires = Math.min(3600, Number(req.message.get('expires') ?? 3600));
    const key = user.startsWith('conf-') ? user.slice(5) : user;
    const dialog = req.accept({ headers: { Expires: String(expires) } });
    const sub: Subscription = { dialog, key, expiresAt: Date.now() + expires * 1000 };
    if (expires > 0) this.subscriptions.add(sub);
    dialog.onRequest((inDialog) => {
      if (inDialog.method !== 'SUBSCRIBE') {
        inDialog.respond(200);
        return;
      }
      const refresh = Number(inDialog.message.get('expires') ?? 3600);
      inDialog.respond(200, { headers: { Expires: String(refresh) } });
      sub.expiresAt = Date.now() + refresh * 1000;
      if (refresh === 0) this.notify(sub, true);
    });
    dialog.onTerminated(() => this.subscriptions.delete(sub));
    this.notify(sub, expires === 0);
  }

  /** The model changed a conference: everyone following it, or a member of it before or now, is told. */
  stateChanged(state: ConferenceState): void {
    const before = this.conferences.get(state.connId);
    if (state.state === 'deleted') this.conferences.delete(state.connId);
    else this.conferences.set(state.connId, state);
    const concerned = new Set<string>([state.connId, ...state.members.flatMap((m) => [m.alias, ...(m.dn ? [m.dn] : [])])]);
    for (const m of before?.members ?? []) concerned.add(m.alias);
    for (const sub of this.subscriptions) if (concerned.has(sub.key)) this.notify(sub, false, state);
  }

  /** Ends every subscription with a final NOTIFY; used when stopping. */
  endAll(): void {
    for (const sub of [...this.subscriptions]) this.notify(sub, true);
  }

  private conferenceFor(key: string): ConferenceState | undefined {
    const byConnId = this.conferences.get(key);
    if (byConnId) return byConnId;
    for (const state of this.conferences.values()) if (state.members.some((m) => m.dn === key || m.alias === key)) return state;
    return undefined;
  }

  private notify(sub: Subscription, final: boolean, state = this.conferenceFor(sub.key)): void {
    if (Date.now() > sub.expiresAt) final = true;
    const location = this.o.location();
    const info: ConferenceInfo = {
      entity: `sip:conf-${state?.connId ?? sub.key}@${location}`,
      version: state?.version ?? 0,
      state: state?.state === 'full' ? 'full' : 'deleted',
      members: (state?.state === 'full' ? state.members : []).map((m: ConferenceMember) => ({
        alias: m.alias,
        location: m.location,
        entity: `sip:${m.alias}@${m.location}`,
        status: m.status,
        media: m.media,
      })),
    };
    const remaining = Math.max(0, Math.round((sub.expiresAt - Date.now()) / 1000));
    void sub.dialog
      .request('NOTIFY', {
        headers: { Event: 'conference', 'Subscription-State': final ? 'terminated;reason=timeout' : `active;expires=${remaining}` },
        body: conferenceInfoXml(info),
        contentType: CONFERENCE_INFO_CONTENT_TYPE,
      })
      .catch(() => undefined);
    if (final) this.subscriptions.delete(sub);
  }
}
