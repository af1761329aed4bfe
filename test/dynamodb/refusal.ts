/** What the AWS SDK's error for a refused DynamoDB request says, for assertions. */
import type { DynamoDBServiceException } from "@aws-sdk/client-dynamodb";

/**
 * The exception name, message and HTTP status `request` rejects with; `{ name: "accepted" }`
 * when it succeeds, so that an assertion shows which request was not refused.
 */
export async function refusal(
  request: Promise<unknown>,
): Promise<{ name: string; message?: string; status?: number }> {
  try {
    await request;
  } catch (e) {
    const error = e as DynamoDBServiceException;
    return { name: error.name, message: error.message, status: error.$metadata?.httpStatusCode };
  }
  return { name: "accepted" };
}
