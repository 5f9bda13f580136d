/**
 * Resolves a synthesized CloudFormation template the way CloudFormation would for one
 * deployment: `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Select`, `Fn::Split` and the pseudo
 * parameters, with physical names made up per resource type (or given, e.g. the names of the
 * resources created in moto). Tests use it to hand the evaluator real policy documents, and to
 * run the bundled function with the environment its template gives it.
 */

import type { CfnJson } from './cdk.js';

/** Where the deployment is. */
export interface Deployment {
  readonly account: string;
  readonly region: string;
  readonly partition?: string;
  readonly stackName?: string;
}

/** A resource's physical identity: what `Ref` returns and its `Fn::GetAtt` attributes. */
export interface Physical {
  readonly ref: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** Physical names as CloudFormation would make them, by resource type. */
function madeUp(id: string, type: string, d: Required<Deployment>): Physical {
  const { account, region, partition } = d;
  const name = id.toLowerCase().slice(0, 63);
  switch (type) {
    case 'AWS::S3::Bucket':
      return { ref: name, attributes: { Arn: `arn:${partition}:s3:::${name}` } };
    case 'AWS::IAM::Role':
      return { ref: id, attributes: { Arn: `arn:${partition}:iam::${account}:role/${id}` } };
    case 'AWS::KMS::Key': {
      const keyId = `00000000-0000-4000-8000-${id.slice(-12).toLowerCase().padStart(12, '0')}`;
      return {
        ref: keyId,
        attributes: { Arn: `arn:${partition}:kms:${region}:${account}:key/${keyId}`, KeyId: keyId },
      };
    }
    case 'AWS::SNS::Topic': {
      const arn = `arn:${partition}:sns:${region}:${account}:${id}`;
      return { ref: arn, attributes: { TopicArn: arn, TopicName: id } };
    }
    case 'AWS::Lambda::Function':
      return {
        ref: id,
        attributes: { Arn: `arn:${partition}:lambda:${region}:${account}:function:${id}` },
      };
    case 'AWS::SQS::Queue':
      return {
        ref: `https://sqs.${region}.amazonaws.com/${account}/${id}`,
        attributes: { Arn: `arn:${partition}:sqs:${region}:${account}:${id}`, QueueName: id },
      };
    case 'AWS::Logs::LogGroup':
      return {
        ref: id,
        attributes: { Arn: `arn:${partition}:logs:${region}:${account}:log-group:${id}:*` },
      };
    default:
      return {
        ref: id,
        attributes: { Arn: `arn:${partition}:unknown:${region}:${account}:${id}` },
      };
  }
}

/** A template and how to resolve values in it. */
export class ResolvedTemplate {
  private readonly d: Required<Deployment>;

  constructor(
    readonly template: CfnJson,
    deployment: Deployment,
    private readonly given: Readonly<Record<string, Physical>> = {},
  ) {
    this.d = {
      partition: 'aws',
      stackName: 'Regtoken',
      ...deployment,
    };
  }

  /** The physical identity of resource `id`. */
  physical(id: string): Physical {
    const given = this.given[id];
    if (given) return given;
    const resource = this.template.Resources?.[id];
    if (!resource) throw new Error(`no resource ${id} in the template`);
    return madeUp(id, resource.Type, this.d);
  }

  /** `value` with every intrinsic function resolved. */
  resolve(value: CfnJson): CfnJson {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== 'object') return value;
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const [key] = keys as [string];
      const arg = value[key];
      switch (key) {
        case 'Ref':
          return this.ref(arg);
        case 'Fn::GetAtt': {
          const [id, attribute] = arg as [string, string];
          const found = this.physical(id).attributes[attribute];
          if (found === undefined) throw new Error(`no attribute ${attribute} of ${id}`);
          return found;
        }
        case 'Fn::Join': {
          const [separator, parts] = arg as [string, CfnJson[]];
          return (this.resolve(parts) as unknown[]).join(separator);
        }
        case 'Fn::Select': {
          const [index, list] = arg as [number, CfnJson];
          return (this.resolve(list) as unknown[])[Number(index)];
        }
        case 'Fn::Split': {
          const [separator, text] = arg as [string, CfnJson];
          return String(this.resolve(text)).split(separator);
        }
        case 'Fn::Sub': {
          // The string form, whose ${Name} are pseudo parameters or resources (Ref).
          if (typeof arg !== 'string') throw new Error('unsupported Fn::Sub with variables');
          return arg.replace(/\$\{([^}]+)\}/g, (_, name: string) => this.ref(name));
        }
        default:
          if (key.startsWith('Fn::')) throw new Error(`unsupported ${key}`);
      }
    }
    return Object.fromEntries(keys.map((k) => [k, this.resolve(value[k])]));
  }

  private ref(name: string): string {
    switch (name) {
      case 'AWS::AccountId':
        return this.d.account;
      case 'AWS::Region':
        return this.d.region;
      case 'AWS::Partition':
        return this.d.partition;
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return this.d.stackName;
      default:
        return this.physical(name).ref;
    }
  }

  /** The ids of the resources of `type`. */
  idsOf(type: string): string[] {
    return Object.entries(this.template.Resources ?? {})
      .filter(([, r]) => (r as { Type: string }).Type === type)
      .map(([id]) => id);
  }

  /** The one resource of `type` whose id starts with `prefix`. */
  only(type: string, prefix = ''): { id: string; properties: CfnJson } {
    const ids = this.idsOf(type).filter((id) => id.startsWith(prefix));
    if (ids.length !== 1)
      throw new Error(`${ids.length} resources of ${type} start with ${prefix}`);
    const id = ids[0] as string;
    return { id, properties: this.template.Resources[id].Properties };
  }

  /** Resolved identity policies attached to role `roleId` (AWS::IAM::Policy resources). */
  rolePolicies(roleId: string): CfnJson[] {
    return this.idsOf('AWS::IAM::Policy')
      .map((id) => this.template.Resources[id].Properties)
      .filter((p) => JSON.stringify(p.Roles) === JSON.stringify([{ Ref: roleId }]))
      .map((p) => this.resolve(p.PolicyDocument));
  }
}
