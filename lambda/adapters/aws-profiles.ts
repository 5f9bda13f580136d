/**
 * The AWS config and credentials files (`~/.aws/config`, `~/.aws/credentials`, or
 * AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE), read by the AWS SDK's own parser and merged
 * per profile exactly as its credential providers see them. Loaded on demand: a cached answer
 * for environment credentials never needs them.
 */

import type { ProfileSettings } from '../core/aws-source.js';

/** Every profile's settings by name; `{}` when there are no files or they cannot be read. */
export async function readAwsProfiles(): Promise<Record<string, ProfileSettings>> {
  const { parseKnownFiles } = await import('@smithy/core/config');
  try {
    return await parseKnownFiles({});
  } catch {
    // The SDK will report an unreadable file when it resolves credentials.
    return {};
  }
}
