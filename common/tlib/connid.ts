/** A ConnID as SIP Server prints it: 16 lowercase hexadecimal digits. Constants only: the call model loads it. */
export const ConnIDPattern = /^[0-9a-f]{16}$/;
