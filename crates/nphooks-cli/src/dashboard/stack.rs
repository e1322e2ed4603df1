//! `--stack NAME`: a deployed stack's table and queues from its CloudFormation outputs
//! (`IdempotencyTableName`, `<X>DeadLetterQueueUrl`), each queue found from its DLQ
//! (`ListDeadLetterSourceQueues`). One signed `DescribeStacks` call over the Query API
//! (SigV4 with the SDK's own signer and credentials), so no CloudFormation SDK is built.

use std::time::SystemTime;

use anyhow::Context;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use nphooks_core::config::Settings;
use nphooks_core::routing::Integration;

use crate::queues::aws_error;

/// The stack's outputs, as (key, value) pairs, from a `DescribeStacks` answer.
pub fn outputs(xml: &str) -> Vec<(String, String)> {
    let tag = |block: &str, name: &str| {
        let open = format!("<{name}>");
        let start = block.find(&open)? + open.len();
        let end = block[start..].find(&format!("</{name}>"))? + start;
        Some(unescape(block[start..end].trim()))
    };
    let Some(section) = xml
        .split_once("<Outputs>")
        .and_then(|(_, rest)| rest.split_once("</Outputs>"))
        .map(|(section, _)| section)
    else {
        return Vec::new();
    };
    section
        .split("<member>")
        .filter_map(|block| Some((tag(block, "OutputKey")?, tag(block, "OutputValue")?)))
        .collect()
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The output key of an integration's DLQ URL: `SlackDeadLetterQueueUrl`.
fn dlq_output(integration: Integration) -> String {
    let name = integration.as_str();
    let mut chars = name.chars();
    let first = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or_default();
    format!("{first}{}DeadLetterQueueUrl", chars.as_str())
}

async fn describe(aws: &aws_config::SdkConfig, stack: &str) -> anyhow::Result<String> {
    let region = aws
        .region()
        .context("no AWS region: set AWS_REGION (or a profile's region)")?
        .to_string();
    let endpoint = aws.endpoint_url().map_or_else(
        || format!("https://cloudformation.{region}.amazonaws.com/"),
        |url| format!("{}/", url.trim_end_matches('/')),
    );
    let credentials = aws
        .credentials_provider()
        .context("no AWS credentials are configured")?
        .provide_credentials()
        .await
        .context("could not load AWS credentials")?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "DescribeStacks")
        .append_pair("StackName", stack)
        .append_pair("Version", "2010-05-15")
        .finish();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("cloudformation")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let headers = [("content-type", content_type)];
    let signable = SignableRequest::new(
        "POST",
        &endpoint,
        headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let mut request = reqwest::Client::new()
        .post(&endpoint)
        .header("content-type", content_type)
        .body(body);
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    let answer = request
        .send()
        .await
        .with_context(|| format!("could not reach CloudFormation at {endpoint}"))?;
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "CloudFormation refused DescribeStacks for stack {stack} ({status}): check the name, the region and your credentials"
    );
    Ok(text)
}

/// `settings` with the stack's table (`IDEMPOTENCY_TABLE`) and queues (`<X>_QUEUE_URL`).
pub async fn settings_of(
    aws: &aws_config::SdkConfig,
    stack: &str,
    settings: &Settings,
) -> anyhow::Result<Settings> {
    let outputs = outputs(&describe(aws, stack).await?);
    let output = |key: &str| {
        outputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .with_context(|| format!("stack {stack} has no output {key}: is it an nphooks stack?"))
    };
    let mut pairs = settings.pairs();
    pairs.push((
        "IDEMPOTENCY_TABLE".to_owned(),
        output("IdempotencyTableName")?,
    ));
    let sqs = aws_sdk_sqs::Client::new(aws);
    for integration in Integration::ALL {
        let dlq = output(&dlq_output(integration))?;
        let sources = sqs
            .list_dead_letter_source_queues()
            .queue_url(&dlq)
            .send()
            .await
            .map_err(aws_error)
            .with_context(|| format!("could not find the queue of {dlq}"))?;
        let queue = sources
            .queue_urls()
            .first()
            .with_context(|| format!("no queue redrives to {dlq}"))?;
        pairs.push((integration.queue_url_var().to_owned(), queue.clone()));
    }
    Ok(Settings::from_pairs(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_describe_stacks_answer_then_its_outputs_are_read() {
        let xml = r#"<DescribeStacksResponse><DescribeStacksResult><Stacks><member>
          <StackName>hooks</StackName><Outputs>
            <member><OutputKey>IdempotencyTableName</OutputKey><OutputValue>hooks-Table-1</OutputValue></member>
            <member><OutputValue>https://sqs/q?a=1&amp;b=2</OutputValue><OutputKey>SlackDeadLetterQueueUrl</OutputKey></member>
          </Outputs></member></Stacks></DescribeStacksResult></DescribeStacksResponse>"#;
        let found = outputs(xml);
        assert_eq!(
            found,
            vec![
                (
                    "IdempotencyTableName".to_owned(),
                    "hooks-Table-1".to_owned()
                ),
                (
                    "SlackDeadLetterQueueUrl".to_owned(),
                    "https://sqs/q?a=1&b=2".to_owned()
                ),
            ]
        );
        assert_eq!(dlq_output(Integration::Slack), "SlackDeadLetterQueueUrl");
        assert!(outputs("<Error/>").is_empty());
    }
}
