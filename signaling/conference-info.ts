/**
 * RFC 4575 conference-info documents, so a plain SIP phone that SUBSCRIBEs to the `conference`
 * event package sees what a T-Library desktop sees: who is in the conference and who is
 * listen-disconnected (endpoint status "on-hold", media "inactive").
 */

export type EndpointStatus = 'pending' | 'dialing-out' | 'dialing-in' | 'alerting' | 'on-hold' | 'connected' | 'disconnecting' | 'disconnected';

export interface ConferenceMember {
  /** The LCTParty alias (DN number). */
  alias: string;
  location: string;
  /** A SIP URI for the member, e.g. sip:7003@SiteA. */
  entity: string;
  status: EndpointStatus;
  /** Direction of the member's media as the focus applies it. */
  media: 'sendrecv' | 'inactive';
}

export interface ConferenceInfo {
  /** The conference URI (the focus). */
  entity: string;
  version: number;
  state: 'full' | 'partial' | 'deleted';
  subject?: string;
  members: ConferenceMember[];
}

export const CONFERENCE_INFO_CONTENT_TYPE = 'application/conference-info+xml';

function xml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

export function conferenceInfoXml(info: ConferenceInfo): string {
  const users = info.members
    .map(
      (m) => `    <user entity="${xml(m.entity)}" state="full">
      <display-text>${xml(`${m.alias} (${m.location})`)}</display-text>
      <endpoint entity="${xml(m.entity)}">
        <status>${m.status}</status>
        <media id="audio">
          <type>audio</type>
          <status>${m.media}</status>
        </media>
      </endpoint>
    </user>`,
    )
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="${xml(info.entity)}" state="${info.state}" version="${info.version}">
  <conference-description>
    <subject>${xml(info.subject ?? 'conference')}</subject>
  </conference-description>
  <conference-state>
    <user-count>${info.members.length}</user-count>
    <active>${info.state !== 'deleted'}</active>
  </conference-state>
  <users>
${users}
  </users>
</conference-info>
`;
}
